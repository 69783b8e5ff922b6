"""Face access models of MFMC (§3.3): a simulated platform (bench.access.platform), its
storage in SQLite (bench.access.storage), the three models (proxy, authorization, rules;
one file each, registry `bench.registry.ACCESS`, configs in conf/access/), workloads
(bench.access.generate) and their measurement (bench.access.simulate)."""
