"""The fault suite (``make faults``): kills, signals, full and read-only disks, damaged
references, inputs and configuration, each followed by its fix and a rerun whose products
must equal an uninterrupted reference run's (``python -m faults.run_faults --help``)."""
