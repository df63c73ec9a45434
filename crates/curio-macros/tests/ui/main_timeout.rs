#[curio_macros::main(timeout = "1s")]
async fn main() {}
