"""Our HTTP/1.1 conformance corpus: cases.py (data), replayed by tests/test_conformance.py."""
