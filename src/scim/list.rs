//! Listing and searching (RFC 7644 §3.4.2, §3.4.3): `GET /Users?filter=...`
//! and `POST /Users/.search`, with 1-based `startIndex`/`count` paging
//! (count bounded by `max_page_size`) and `attributes`/`excludedAttributes`.
//!
//! The lookups IdPs make on every sync (`userName eq`, `externalId eq`,
//! `id eq`, and a group's `displayName eq`, alone or as one conjunct of an
//! `and`) go to the store's indexes; the whole filter is still evaluated
//! on what they find, so the answer is the same as a scan's. Any other
//! filter scans the directory with the evaluator. Lists are in creation
//! order, which is stable, as Okta's imports (`startIndex += 100`) need.
//! `POST /.search` at the root lists users, then groups.
//! `sortBy` is not supported (`sort.supported: false`) and is ignored.

use serde_json::{json, Map, Value};

use super::definitions::{Kind, KindSchema};
use super::errors::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use super::render::{self, Projection};
use crate::store::directory::{DirGroup, DirUser, DirectoryStore};
use crate::store::Store;

/// `urn:ietf:params:scim:api:messages:2.0:ListResponse`
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// What a list or search asks for.
#[derive(Debug)]
pub struct Query {
    pub filter: Option<Filter>,
    /// 1-based.
    pub start: usize,
    pub count: usize,
    pub projection: Projection,
}

impl Query {
    /// From a query string's parameters (names are case-insensitive).
    pub fn from_params(kind: Kind, params: &[(String, String)], max: usize) -> Result<Self, ScimError> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        Self::build(
            kind,
            get("filter"),
            get("startIndex").map(|s| number(s, "startIndex")).transpose()?,
            get("count").map(|s| number(s, "count")).transpose()?,
            get("attributes"),
            get("excludedAttributes"),
            max,
        )
    }

    /// From a SearchRequest body (`attributes` as arrays of names).
    pub fn from_search(kind: Kind, body: &Value, max: usize) -> Result<Self, ScimError> {
        let Value::Object(body) = body else {
            return Err(ScimError::InvalidSyntax("a SearchRequest is a JSON object".into()));
        };
        let get = |name: &str| super::find_key(body, name).map(|k| &body[k]);
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .map(|v| Some(v.join(",")))
                    .ok_or_else(|| ScimError::InvalidSyntax(format!("`{name}` lists attribute names"))),
                Some(_) => Err(ScimError::InvalidSyntax(format!("`{name}` lists attribute names"))),
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ScimError::InvalidValue(format!("`{name}` must be an integer"))),
                Some(_) => Err(ScimError::InvalidValue(format!("`{name}` must be an integer"))),
            }
        };
        let filter = text("filter")?;
        Self::build(
            kind,
            filter.as_deref(),
            int("startIndex")?,
            int("count")?,
            text("attributes")?.as_deref(),
            text("excludedAttributes")?.as_deref(),
            max,
        )
    }

    fn build(
        kind: Kind,
        filter: Option<&str>,
        start: Option<i64>,
        count: Option<i64>,
        attributes: Option<&str>,
        excluded: Option<&str>,
        max: usize,
    ) -> Result<Self, ScimError> {
        let filter = filter.map(Filter::parse).transpose()?;
        if let Some(filter) = &filter {
            // Refused before any resource is read: the same answer for an
            // empty directory as for a full one.
            filter.validate(&KindSchema(kind))?;
        }
        // RFC 7644 §3.4.2.4: below 1 means 1; a negative count means 0.
        let start = usize::try_from(start.unwrap_or(1).max(1)).unwrap_or(1);
        let count = match count {
            None => max,
            Some(c) => usize::try_from(c.max(0)).unwrap_or(0).min(max),
        };
        Ok(Self {
            filter,
            start,
            count,
            projection: Projection::parse(kind, attributes, excluded)?,
        })
    }
}

fn number(text: &str, name: &str) -> Result<i64, ScimError> {
    text.trim()
        .parse()
        .map_err(|_| ScimError::InvalidValue(format!("`{name}` must be an integer")))
}

/// The ListResponse.
fn answer(total: usize, start: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// What an indexed lookup can find for a filter (or one `and` conjunct).
enum Lookup {
    Id(String),
    UserName(String),
    ExternalId(String),
    DisplayName(String),
}

fn lookup(kind: Kind, filter: &Filter) -> Option<Lookup> {
    match filter {
        Filter::And(items) => items.iter().find_map(|f| lookup(kind, f)),
        Filter::Compare(path, CompareOp::Eq, CompValue::String(value)) if is_core(kind, path) => {
            let value = value.clone();
            match (kind, path.name.to_ascii_lowercase().as_str()) {
                (_, "id") => Some(Lookup::Id(value)),
                (Kind::User, "username") => Some(Lookup::UserName(value)),
                (Kind::User, "externalid") => Some(Lookup::ExternalId(value)),
                (Kind::Group, "displayname") => Some(Lookup::DisplayName(value)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_core(kind: Kind, path: &AttrPath) -> bool {
    path.sub.is_none()
        && path
            .uri
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(kind.core().id))
}

/// Whether the filter reads the core attribute `name` (so it must be
/// loaded before evaluating).
fn mentions(filter: &Filter, name: &str) -> bool {
    let named = |p: &AttrPath| p.uri.is_none() && p.name.eq_ignore_ascii_case(name);
    match filter {
        Filter::Present(p) | Filter::Compare(p, _, _) => named(p),
        Filter::ValuePath(p, _) => named(p),
        Filter::Not(inner) => mentions(inner, name),
        Filter::And(items) | Filter::Or(items) => items.iter().any(|f| mentions(f, name)),
    }
}

fn matches(filter: &Filter, kind: Kind, resource: Map<String, Value>) -> Result<bool, ScimError> {
    Ok(filter.matches(&Value::Object(resource), &KindSchema(kind))?)
}

/// `GET /Users` and `POST /Users/.search`.
pub async fn users(store: &Store, base: &str, query: &Query) -> Result<Value, ScimError> {
    let (total, resources) = users_page(store, base, query, query.start - 1, query.count).await?;
    Ok(answer(total, query.start, resources))
}

/// `GET /Groups` and `POST /Groups/.search`.
pub async fn groups(store: &Store, base: &str, query: &Query) -> Result<Value, ScimError> {
    let (total, resources) = groups_page(store, base, query, query.start - 1, query.count).await?;
    Ok(answer(total, query.start, resources))
}

/// `POST /.search`: users, then groups, as one list (RFC 7644 §3.4.3).
/// The two queries are the same request read against each type's schemas.
pub async fn everything(store: &Store, base: &str, users: &Query, groups: &Query) -> Result<Value, ScimError> {
    let offset = users.start - 1;
    let (user_total, mut resources) = users_page(store, base, users, offset, users.count).await?;
    let group_offset = offset.saturating_sub(user_total);
    let group_limit = users.count - resources.len();
    let (group_total, more) = groups_page(store, base, groups, group_offset, group_limit).await?;
    resources.extend(more);
    Ok(answer(user_total + group_total, users.start, resources))
}

/// The total that match, and the resources from `offset` (0-based), at
/// most `limit`.
async fn users_page(
    store: &Store,
    base: &str,
    query: &Query,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<Value>), ScimError> {
    let groups_wanted = query.projection.wants("groups");
    let Some(filter) = &query.filter else {
        let (rows, total) = store
            .page_users(
                i64::try_from(offset).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX),
            )
            .await?;
        let mut resources = Vec::with_capacity(rows.len());
        for row in &rows {
            resources.push(user_out(store, base, row, groups_wanted, query).await?);
        }
        return Ok((usize::try_from(total).unwrap_or(0), resources));
    };
    let candidates: Vec<DirUser> = match lookup(Kind::User, filter) {
        Some(Lookup::Id(id)) => store.get_user(&id).await?.into_iter().collect(),
        Some(Lookup::UserName(name)) => store.find_user_by_name(&name).await?.into_iter().collect(),
        Some(Lookup::ExternalId(ext)) => store.find_user_by_external_id(&ext).await?.into_iter().collect(),
        _ => store.list_users().await?,
    };
    let needs_groups = mentions(filter, "groups");
    let mut chosen = Vec::new();
    for row in &candidates {
        let groups = match needs_groups {
            true => Some(store.groups_of_user(&row.id).await?),
            false => None,
        };
        let resource = render::user(base, row, groups.as_deref())?;
        if matches(filter, Kind::User, resource)? {
            chosen.push(row);
        }
    }
    let mut resources = Vec::new();
    for row in chosen.iter().skip(offset).take(limit) {
        resources.push(user_out(store, base, row, groups_wanted, query).await?);
    }
    Ok((chosen.len(), resources))
}

async fn user_out(store: &Store, base: &str, row: &DirUser, groups: bool, query: &Query) -> Result<Value, ScimError> {
    let groups = match groups {
        true => Some(store.groups_of_user(&row.id).await?),
        false => None,
    };
    let resource = render::user(base, row, groups.as_deref())?;
    Ok(Value::Object(query.projection.apply(Kind::User, resource)))
}

async fn groups_page(
    store: &Store,
    base: &str,
    query: &Query,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<Value>), ScimError> {
    let candidates: Vec<DirGroup> = match query.filter.as_ref().and_then(|f| lookup(Kind::Group, f)) {
        Some(Lookup::Id(id)) => store.get_group(&id).await?.into_iter().collect(),
        Some(Lookup::DisplayName(name)) => store.find_group_by_name(&name).await?.into_iter().collect(),
        _ => store.list_groups().await?,
    };
    let mut chosen = Vec::new();
    for row in &candidates {
        let Some(filter) = &query.filter else {
            chosen.push(row);
            continue;
        };
        let members = match mentions(filter, "members") {
            true => Some(store.group_member_names(&row.id).await?),
            false => None,
        };
        let resource = render::group(base, row, members.as_deref(), true)?;
        if matches(filter, Kind::Group, resource)? {
            chosen.push(row);
        }
    }
    let members_wanted = query.projection.wants("members");
    let display = query.projection.requests("members", "display");
    let mut resources = Vec::new();
    for row in chosen.iter().skip(offset).take(limit) {
        let members = match members_wanted {
            true => Some(store.group_member_names(&row.id).await?),
            false => None,
        };
        let resource = render::group(base, row, members.as_deref(), display)?;
        resources.push(Value::Object(query.projection.apply(Kind::Group, resource)));
    }
    Ok((chosen.len(), resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn paging_is_one_based_and_bounded() {
        let q = Query::from_params(Kind::User, &params(&[]), 200).expect("valid");
        assert_eq!((q.start, q.count), (1, 200));
        let q = Query::from_params(Kind::User, &params(&[("startIndex", "0"), ("count", "-5")]), 200).expect("valid");
        assert_eq!((q.start, q.count), (1, 0));
        let q =
            Query::from_params(Kind::User, &params(&[("STARTINDEX", "101"), ("count", "100000")]), 200).expect("valid");
        assert_eq!((q.start, q.count), (101, 200));
        let bad = Query::from_params(Kind::User, &params(&[("count", "ten")]), 200).expect_err("not a number");
        assert_eq!(bad.scim_type(), Some("invalidValue"));
    }

    #[test]
    fn bad_filters_are_refused_before_reading_anything() {
        for filter in [
            "userName eq",
            "active eq \"true\"",
            "password sw \"a\"",
            "name eq \"x\"",
        ] {
            let error = Query::from_params(Kind::User, &params(&[("filter", filter)]), 200).expect_err(filter);
            assert_eq!(error.scim_type(), Some("invalidFilter"), "{filter}: {error}");
        }
    }

    #[test]
    fn indexed_lookups_are_found_alone_or_as_a_conjunct() {
        let f = |text: &str| Filter::parse(text).expect("filter");
        assert!(matches!(
            lookup(Kind::User, &f(r#"userName eq "a""#)),
            Some(Lookup::UserName(v)) if v == "a"
        ));
        assert!(matches!(
            lookup(Kind::User, &f(r#"active eq true and externalId eq "e""#)),
            Some(Lookup::ExternalId(v)) if v == "e"
        ));
        assert!(matches!(
            lookup(Kind::Group, &f(r#"displayName eq "Eng""#)),
            Some(Lookup::DisplayName(_))
        ));
        assert!(lookup(Kind::User, &f(r#"userName eq "a" or userName eq "b""#)).is_none());
        assert!(lookup(Kind::User, &f(r#"userName sw "a""#)).is_none());
        assert!(lookup(Kind::User, &f(r#"displayName eq "a""#)).is_none());
        assert!(mentions(&f(r#"groups[value eq "g"]"#), "groups"));
        assert!(!mentions(&f(r#"userName eq "g""#), "groups"));
    }

    #[test]
    fn search_bodies_take_arrays_of_names() {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "attributes": ["userName", "emails"],
                          "filter": "userName sw \"b\"", "startIndex": 2, "count": 10});
        let q = Query::from_search(Kind::User, &body, 200).expect("valid");
        assert_eq!((q.start, q.count), (2, 10));
        assert!(q.projection.wants("emails") && !q.projection.wants("name"));
        let bad = json!({"attributes": [1]});
        assert_eq!(
            Query::from_search(Kind::User, &bad, 200)
                .map(|_| ())
                .map_err(|e| e.scim_type()),
            Err(Some("invalidSyntax"))
        );
    }
}
