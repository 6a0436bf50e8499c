//! `Role` and `Outcome`: how a caller took part in its flight.

/// How a caller took part in the flight whose value it got.
///
/// Unlike Go's `shared` flag, which is also true for the caller that started a flight others
/// joined, the role tells the two apart: count `Joined` to know how many executions sharing saved.
///
/// # Examples
///
/// ```
/// use single_flight::{KeyedGroup, Role};
///
/// # futures_lite::future::block_on(async {
/// let group: KeyedGroup<u8, u8> = KeyedGroup::new();
/// let (a, b) = futures_lite::future::zip(
///     group.call(1, |k| async move {
///         futures_lite::future::yield_now().await; // still running when the second call comes
///         k + 1
///     }).with_role(),
///     group.call(1, |_| async { unreachable!("joins") }).with_role(),
/// )
/// .await;
/// assert_eq!((a.role, b.role), (Role::Started, Role::Joined));
/// assert_eq!((a.callers, b.callers), (2, 2));
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// This caller started the flight: its closure made the work.
    Started,
    /// This caller joined a flight that another caller started; its closure never ran.
    Joined,
}

/// A flight's value as one caller got it, with the caller's [`Role`] and the number of callers
/// the value went to.
///
/// `callers` counts the callers registered with the flight when its value was published, this
/// one included (callers that had left by then are not counted): `1` for a call nobody joined.
///
/// # Examples
///
/// ```
/// use single_flight::{Group, Role};
///
/// # futures_lite::future::block_on(async {
/// let group: Group<&str> = Group::new();
/// let outcome = group.call(|| async { "token" }).with_role().await;
/// assert_eq!(outcome.value, "token");
/// assert_eq!(outcome.role, Role::Started);
/// assert_eq!(outcome.callers, 1);
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<V> {
    /// The flight's value.
    pub value: V,
    /// Whether this caller started the flight or joined it.
    pub role: Role,
    /// How many callers got the value, this one included.
    pub callers: usize,
}

impl<V> Outcome<V> {
    /// Go's `shared` flag: the value went to more than one caller (the starter counts).
    ///
    /// # Examples
    ///
    /// See [`Outcome`].
    pub fn shared(&self) -> bool {
        self.callers > 1
    }
}
