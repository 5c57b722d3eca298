"""The stages, one module each (`flows.stages.ingest`, ...), each declaring `STAGE = Stage(...)`
(flows/stage.py). `python -m flows.stages STAGE` runs one of them (flows/stages/__main__.py,
what dvc.yaml calls); flows/registry.py lists them in pipeline order."""
