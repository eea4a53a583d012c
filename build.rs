// Templates, the stylesheet and migrations are compiled into the binary; rebuild when
// they change.
fn main() {
    for dir in ["templates", "static", "migrations"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
