"""Query strategies (conf/query/): which pool face becomes the target; see base.py."""
