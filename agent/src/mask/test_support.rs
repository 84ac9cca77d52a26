//! Rules, catalogs and fields for the masking tests.

use std::sync::Arc;

use regex::Regex;

use super::MaskRules;
use super::plan::CatalogNames;
use crate::pg::codec::backend::FieldDescription;
use crate::policy::{
    ColumnPattern, Detector, MaskRule, MaskStrategy, Masking, NamePattern, SourceLocation,
};

/// The keyed-hash key of [`compiled`] rules.
pub(crate) const KEY: &[u8] = b"0123456789abcdef";

/// `public.payments`: 1 id (int4), 2 card_number (text), 3 note (text), 4 email (text).
pub(crate) const PAYMENTS: u32 = 16384;
/// `public.customers`: 1 id (int4), 2 email (varchar), 3 name (text).
pub(crate) const CUSTOMERS: u32 = 16390;
pub(crate) const PAYMENTS_ROWTYPE: u32 = 16386;

fn here() -> SourceLocation {
    SourceLocation {
        file: "p.toml".into(),
        line: 1,
    }
}

fn empty_rule(name: &str, strategy: MaskStrategy) -> MaskRule {
    MaskRule {
        name: name.into(),
        columns: Vec::new(),
        result_columns: Vec::new(),
        detectors: Vec::new(),
        patterns: Vec::new(),
        strategy,
        source: here(),
    }
}

/// A column rule on `schema.table.column` patterns.
pub(crate) fn rule(name: &str, columns: &[&str], strategy: MaskStrategy) -> MaskRule {
    MaskRule {
        columns: columns
            .iter()
            .map(|c| ColumnPattern::parse(c).unwrap())
            .collect(),
        ..empty_rule(name, strategy)
    }
}

/// A column rule on result column names.
pub(crate) fn result_rule(name: &str, names: &[&str], strategy: MaskStrategy) -> MaskRule {
    MaskRule {
        result_columns: names
            .iter()
            .map(|c| NamePattern::parse(c).unwrap())
            .collect(),
        ..empty_rule(name, strategy)
    }
}

/// A content rule with detectors.
pub(crate) fn content_rule(name: &str, detectors: &[Detector], strategy: MaskStrategy) -> MaskRule {
    MaskRule {
        detectors: detectors.to_vec(),
        ..empty_rule(name, strategy)
    }
}

/// A content rule with custom patterns.
pub(crate) fn pattern_rule(name: &str, patterns: &[&str], strategy: MaskStrategy) -> MaskRule {
    MaskRule {
        patterns: patterns.iter().map(|p| Regex::new(p).unwrap()).collect(),
        ..empty_rule(name, strategy)
    }
}

pub(crate) fn masking(rules: Vec<MaskRule>) -> Masking {
    Masking {
        rules,
        ..Masking::default()
    }
}

/// The rules compiled with [`KEY`].
pub(crate) fn compiled(rules: Vec<MaskRule>) -> Arc<MaskRules> {
    Arc::new(MaskRules::new(&masking(rules), Some(KEY)).unwrap())
}

/// Names for [`PAYMENTS`] and [`CUSTOMERS`].
pub(crate) fn catalog() -> CatalogNames {
    let mut c = CatalogNames::new();
    for (attnum, name) in [(1, "id"), (2, "card_number"), (3, "note"), (4, "email")] {
        c.insert(PAYMENTS, "public", "payments", Some((attnum, name)));
    }
    for (attnum, name) in [(1, "id"), (2, "email"), (3, "name")] {
        c.insert(CUSTOMERS, "public", "customers", Some((attnum, name)));
    }
    c
}

/// A column of table `table_oid`.
pub(crate) fn table_field(
    name: &str,
    table_oid: u32,
    attnum: i16,
    type_oid: u32,
) -> FieldDescription {
    FieldDescription {
        table_oid,
        column_attr: attnum,
        ..FieldDescription::text(name, type_oid)
    }
}
