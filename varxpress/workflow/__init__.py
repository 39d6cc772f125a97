"""The scatter-gather workflow for cohort VCFs: shard planning and gathering, and its runner."""
