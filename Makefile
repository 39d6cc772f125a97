# `make demo`: install what the demo needs (varxpress and its Python dependencies in .venv, bcftools and tabix) and
# score the bundled example.  `make test`: install everything (test, Spark and workflow extras; Java, Chromium) and
# run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo_out

.PHONY: demo test install install-demo system-deps system-deps-demo clean bench

demo: install-demo
	$(BIN)/varxpress score example_data/demo.vcf \
	    --fasta example_data/hg38_promoters.fa.gz \
	    --tss example_data/tss.bed --tss-offset 10000 \
	    --out $(DEMO_OUT)/demo.scored.vcf.gz --tsv $(DEMO_OUT)/demo.scores.tsv --stats $(DEMO_OUT)/demo.stats.json
	@echo "== $(DEMO_OUT)/demo.scores.tsv (one row per scored variant, allele and gene; all columns: docs/output.md)"
	@awk -F'\t' '!/^##/ {printf "%-6s %-10s %-23s %-5s %-6s %-16s %-6s %-8s %-11s %-11s %-10s %s\n", $$1, $$2, $$3, $$4, $$5, $$8, $$9, $$11, $$14, $$15, $$16, $$19}' $(DEMO_OUT)/demo.scores.tsv
	@echo "== flags: n_rich = the bundled example genome is mostly N around that gene (a stand-in for hg38), so read"
	@echo "   those numbers as a demonstration, not as the gene's answer (docs/output.md, Flags)"
	@echo "== every input record is in $(DEMO_OUT)/demo.scored.vcf.gz; unscored ones say why in VXP_SKIP"

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

install: $(VENV)/.installed system-deps

install-demo: $(VENV)/.installed-core system-deps-demo

$(DEMO_OUT):
	mkdir -p $(DEMO_OUT)

demo: | $(DEMO_OUT)

system-deps:
	@scripts/install-system-deps all

system-deps-demo:
	@scripts/install-system-deps demo

$(VENV)/.installed-core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed: $(VENV)/.installed-core
	$(BIN)/python -m pip install -q -e '.[test,spark,workflow]'
	touch $@

bench: install
	$(BIN)/python benchmarks/bench_scoring.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
