//! The document side of a verification, in safe code over libxml's tree:
//! IDs registered (unique NCNames), signatures found, and each one's shape
//! checked before any cryptography runs.

use std::collections::HashSet;

use libxml::tree::{Document, Node};

use crate::{Algorithms, Error};

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Reference transforms that leave the digest over the referenced
/// element itself (minus its signature): SAML Core 5.4.4 allows these.
const TRANSFORMS: [&str; 6] = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
];

/// Every element's `ID`, registered with libxml2 (how libxmlsec1 resolves
/// `#ID`). Refuses a value that is not an NCName and a value used twice:
/// with two, which element a reference means is the attacker's choice.
pub(crate) fn register_ids(document: &Document, root: &Node) -> Result<(), Error> {
    let mut seen = HashSet::new();
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        if let Some(id) = node.get_attribute("ID") {
            if !seen.insert(id.clone()) {
                return Err(Error::DuplicateId);
            }
            if !crate::ffi::register_id(document, &node, "ID", &id) {
                return Err(Error::BadId);
            }
        }
        stack.extend(node.get_child_elements());
    }
    Ok(())
}

fn is_dsig(node: &Node, name: &str) -> bool {
    node.get_name() == name && node.get_namespace().is_some_and(|ns| ns.get_href() == DSIG)
}

/// Every `ds:Signature` element, anywhere in the document.
pub(crate) fn signatures(root: &Node) -> Vec<Node> {
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        if is_dsig(&node, "Signature") {
            out.push(node.clone());
        }
        stack.extend(node.get_child_elements());
    }
    out
}

/// The element a signature signs, as its shape says.
pub(crate) struct Parent {
    pub id: String,
    pub is_root: bool,
}

fn only_child(node: &Node, name: &str) -> Result<Node, Error> {
    let mut found = node.get_child_elements().into_iter().filter(|c| is_dsig(c, name));
    match (found.next(), found.next()) {
        (Some(child), None) => Ok(child),
        _ => Err(Error::Reference("not exactly one SignedInfo or Reference")),
    }
}

/// Checks a signature's shape: one Reference, to the ID of the element
/// holding the signature, with allowed transforms and algorithms.
pub(crate) fn check_shape(signature: &Node, algorithms: Option<Algorithms<'_>>) -> Result<Parent, Error> {
    let parent = signature
        .get_parent()
        .filter(|p| p.is_element_node())
        .ok_or(Error::Reference("the signature has no parent element"))?;
    let id = parent
        .get_attribute("ID")
        .ok_or(Error::Reference("the signed element has no ID"))?;
    let is_root = parent.get_parent().is_none_or(|p| !p.is_element_node());
    let signed_info = only_child(signature, "SignedInfo")?;
    let reference = only_child(&signed_info, "Reference")?;
    if reference.get_attribute("URI").as_deref() != Some(format!("#{id}").as_str()) {
        return Err(Error::Reference("the URI is not the parent's ID"));
    }
    for transforms in reference
        .get_child_elements()
        .iter()
        .filter(|c| is_dsig(c, "Transforms"))
    {
        for transform in transforms.get_child_elements() {
            let algorithm = transform.get_attribute("Algorithm").unwrap_or_default();
            if !is_dsig(&transform, "Transform") || !TRANSFORMS.contains(&algorithm.as_str()) {
                return Err(Error::Reference("a transform other than enveloped-signature or c14n"));
            }
        }
    }
    if let Some(allowed) = algorithms {
        let algorithm = |node: &Node, name: &str| {
            only_child(node, name)
                .ok()
                .and_then(|m| m.get_attribute("Algorithm"))
                .unwrap_or_default()
        };
        let method = algorithm(&signed_info, "SignatureMethod");
        let digest = algorithm(&reference, "DigestMethod");
        if !allowed.signature.contains(&method.as_str()) || !allowed.digest.contains(&digest.as_str()) {
            return Err(Error::Algorithm);
        }
    }
    Ok(Parent { id, is_root })
}
