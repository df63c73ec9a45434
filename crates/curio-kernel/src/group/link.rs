//! How a task's header reaches the task groups it owns and the one it belongs to.

use std::rc::Weak;

use crate::id::TaskId;

/// The hooks between a group and its members' and owner's headers.
pub(crate) trait GroupLink {
    /// A member terminated.
    fn member_terminated(&self, id: TaskId);
    /// A member was joined by hand: it leaves the group.
    fn forget(&self, id: TaskId);
    /// Requests cancellation of every live member; `true` while any is still alive.
    fn cancel_members(&self) -> bool;
}

/// A task's group links, in its header's extras.
#[derive(Default)]
pub(crate) struct Membership {
    /// Task groups this task owns, oldest first.
    pub(crate) owned: Vec<Weak<dyn GroupLink>>,
    /// The group this task is a member of.
    pub(crate) member_of: Option<Weak<dyn GroupLink>>,
}
