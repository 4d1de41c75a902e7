// sqlx::migrate! embeds the migration files at compile time; rebuild when
// they change (cargo does not track them otherwise).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
