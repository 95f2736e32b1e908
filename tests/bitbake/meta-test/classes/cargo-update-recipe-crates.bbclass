# Stub of OE-core's cargo-update-recipe-crates.bbclass (do_update_crates);
# scripts/crates/gen-crates-inc.py writes the same .inc.
