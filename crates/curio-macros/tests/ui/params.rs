#[curio_macros::test]
async fn with_args(n: u32) {}

fn main() {}
