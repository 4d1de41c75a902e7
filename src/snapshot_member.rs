//! Members doorward keeps in a session's stored claims snapshot beside
//! (never inside) what the IdP sent: the login's authentication, what
//! shared signals said since. Each is read leniently (absent or unreadable
//! is the default) and written so that a default value leaves no member,
//! and an IdP answer that happens to carry a member of that name never
//! decides it.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The member `name` of a stored snapshot (the default if it has none or
/// it does not parse).
pub fn read<T: DeserializeOwned + Default>(snapshot: &str, name: &str) -> T {
    serde_json::from_str::<serde_json::Value>(snapshot)
        .ok()
        .and_then(|mut v| v.get_mut(name).map(serde_json::Value::take))
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// `snapshot` with `value` as its member `name` (removed when `value` is
/// the default).
pub fn write<T: Serialize + Default + PartialEq>(value: &T, snapshot: &mut serde_json::Value, name: &str) {
    if let Some(object) = snapshot.as_object_mut() {
        match serde_json::to_value(value) {
            Ok(member) if *value != T::default() => {
                object.insert(name.into(), member);
            }
            _ => {
                object.remove(name);
            }
        }
    }
}
