# textvec's compiled analyzer (textvec/_fastvec.c) is built in place by the editable install
# (setup.py, `pip install -e .`): reinstall when its source or build script changes.
$(STAMP): setup.py textvec/_fastvec.c
