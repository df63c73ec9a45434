#[curio_macros::test]
fn sync_test() {}

fn main() {}
