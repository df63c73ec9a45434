#[curio_macros::test(timeout = "5 parsecs")]
async fn a_test() {}

#[curio_macros::test(timeout = 5)]
async fn another() {}

fn main() {}
