# The whole blurtools chain as a Makefile to copy and adapt:
#   sharp video -> blur-synth -> pack-h5 -> train -> deblur / extract-video -> score
#
#   make -f examples/pipeline.mk VIDEO=my_slowmo.mp4 STEPS=20000 DEVICE=cuda
#
# Every target is a file (or a folder with a stamp file); interrupted steps leave no partial outputs,
# so `make` picks up where it stopped.
#
# The tools: `blurtools` on PATH (an activated virtual environment), else the .venv that `make venv`
# (or `make demo` / `make test`) sets up in the repository this file sits in, else `python3 -m blurtools`.
# BT=... names them yourself.
.DELETE_ON_ERROR:
HERE    := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
ifeq ($(origin BT),undefined)
BT := $(or $(shell command -v blurtools 2>/dev/null),$(wildcard $(HERE)../.venv/bin/blurtools),python3 -m blurtools)
endif
VIDEO   ?= clip.mp4
WORK    ?= pipeline-out
FRAMES  ?= 7
STEPS   ?= 20000
BATCH   ?= 8
PATCH   ?= 128
DEVICE  ?= auto
MODEL   ?= dm
VMODEL  ?= niu
MODEL_ARGS ?=
VMODEL_ARGS ?=
TRAIN_ARGS ?=
# Long steps print a progress line every 30 s (BLURTOOLS_PROGRESS_SECONDS) when not on a terminal;
# QUIET=--quiet silences them.
QUIET ?=

all: $(WORK)/scores.json $(WORK)/video-scores.json

$(WORK)/train/meta.json: $(VIDEO)
	$(BT) blur-synth $(VIDEO) -n $(FRAMES) --shard 0/2 --seed 1 --device $(DEVICE) -o $(WORK)/train $(QUIET)

$(WORK)/test/meta.json: $(VIDEO)
	$(BT) blur-synth $(VIDEO) -n $(FRAMES) --shard 1/2 --seed 1 --device $(DEVICE) -o $(WORK)/test $(QUIET)

$(WORK)/train.h5: $(WORK)/train/meta.json
	$(BT) pack-h5 $(WORK)/train -o $@ $(QUIET)

$(WORK)/deblur-run/weights.pt: $(WORK)/train.h5 $(WORK)/test/meta.json
	$(BT) train --model $(MODEL) $(MODEL_ARGS) --data $< --val $(WORK)/test --out $(WORK)/deblur-run \
	    --steps $(STEPS) --batch $(BATCH) --patch $(PATCH) --device $(DEVICE) --resume $(TRAIN_ARGS) $(QUIET)

$(WORK)/video-run/weights.pt: $(WORK)/train.h5 $(WORK)/test/meta.json
	$(BT) train --model $(VMODEL) $(VMODEL_ARGS) --data $< --val $(WORK)/test --out $(WORK)/video-run \
	    --steps $(STEPS) --batch $(BATCH) --patch $(PATCH) --device $(DEVICE) --resume $(TRAIN_ARGS) $(QUIET)

$(WORK)/deblurred/.done: $(WORK)/deblur-run/weights.pt
	$(BT) deblur $(WORK)/test/blurry -o $(WORK)/deblurred/ --weights $< --device $(DEVICE) $(QUIET)
	touch $@

$(WORK)/videos/.done: $(WORK)/video-run/weights.pt
	$(BT) extract-video $(WORK)/test/blurry -o $(WORK)/videos/ --format png --weights $< --device $(DEVICE) $(QUIET)
	touch $@

$(WORK)/scores.json: $(WORK)/deblurred/.done
	$(BT) score $(WORK)/deblurred $(WORK)/test --json --csv $(WORK)/scores.csv > $@

$(WORK)/video-scores.json: $(WORK)/videos/.done
	$(BT) score $(WORK)/videos $(WORK)/test --video --json > $@

clean:
	rm -rf $(WORK)

.PHONY: all clean
