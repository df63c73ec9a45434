//! Task-local storage: per-task values, inherited by children as clones.

use curio::{spawn, task_local, yield_now};

use crate::vrun;

task_local! {
    static NAME: String;
    static COUNT: u32;
}

#[test]
fn values_are_per_task_and_inherited() {
    vrun(async {
        assert_eq!(NAME.get().unwrap(), None);
        NAME.set("parent".into()).unwrap();
        COUNT.set(1).unwrap();
        let child = spawn(async {
            let inherited = (NAME.get().unwrap(), COUNT.get().unwrap());
            NAME.set("child".into()).unwrap();
            yield_now().await;
            let grandchild = spawn(async { NAME.get().unwrap() });
            (
                inherited,
                NAME.get().unwrap(),
                grandchild.join().await.unwrap(),
            )
        });
        let sibling = spawn(async {
            yield_now().await;
            NAME.get().unwrap()
        });
        let (inherited, own, grandchild) = child.join().await.unwrap();
        assert_eq!(inherited, (Some("parent".into()), Some(1)));
        assert_eq!(own.as_deref(), Some("child"));
        assert_eq!(grandchild.as_deref(), Some("child"));
        // The child's changes stayed in the child.
        assert_eq!(sibling.join().await.unwrap().as_deref(), Some("parent"));
        assert_eq!(NAME.get().unwrap().as_deref(), Some("parent"));
        assert_eq!(NAME.set("again".into()).unwrap().as_deref(), Some("parent"));
        assert_eq!(NAME.take().unwrap().as_deref(), Some("again"));
        assert_eq!(NAME.get().unwrap(), None);
    });
}

#[test]
fn outside_a_task_is_an_error() {
    assert_eq!(NAME.get(), Err(curio::NotInTask));
    assert_eq!(COUNT.set(3), Err(curio::NotInTask));
    assert_eq!(
        curio::check_cancellation(),
        Err(curio::NotInTask),
        "and so is asking for a pending cancellation"
    );
}

#[test]
fn values_drop_when_the_task_ends() {
    use std::rc::Rc;
    task_local! {
        static HELD: Rc<()>;
    }
    let probe = Rc::new(());
    let p = probe.clone();
    vrun(async move {
        let t = spawn(async move {
            HELD.set(p).unwrap();
            std::future::pending::<()>().await
        });
        yield_now().await;
        // The handle outlives the task; the value does not.
        t.cancel().await;
        assert!(t.is_terminated());
    });
    assert_eq!(Rc::strong_count(&probe), 1);
}
