//! `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know they are
//! inputs: without this, adding or removing a migration leaves a stale binary that applies the
//! old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
