#[curio_macros::test(virtual_clock, fast)]
async fn a_test() {}

fn main() {}
