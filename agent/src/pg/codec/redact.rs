//! `Debug` helpers that show the size of payloads, never their bytes: passwords, SASL proofs,
//! cancel keys, parameter values, row values and COPY data must not end up in logs.

use std::fmt;

use bytes::Bytes;

/// Shows `<N bytes>`.
pub(crate) struct Redacted<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// Shows `<N bytes>` or `NULL`.
pub(crate) struct RedactedValue<'a>(pub(crate) Option<&'a [u8]>);

impl fmt::Debug for RedactedValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => Redacted(v).fmt(f),
            None => f.write_str("NULL"),
        }
    }
}

/// Shows a list of values as `[<N bytes>, NULL, …]`.
pub(crate) struct RedactedValues<'a>(pub(crate) &'a [Option<Bytes>]);

impl fmt::Debug for RedactedValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|v| RedactedValue(v.as_deref())))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_shows_sizes_only() {
        let values = [Some(Bytes::from_static(b"secret")), None];
        assert_eq!(
            format!("{:?}", RedactedValues(&values)),
            "[<6 bytes>, NULL]"
        );
        assert_eq!(format!("{:?}", Redacted(b"pw")), "<2 bytes>");
    }
}
