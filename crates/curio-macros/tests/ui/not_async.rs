#[curio_macros::main]
fn main() {}
