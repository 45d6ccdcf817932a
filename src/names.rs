//! Domain enums that own their names: one spelling per value, used by the spec (serde), the
//! command line (clap), messages (`Display`) and did-you-mean hints.
//!
//! [`named_enum!`] declares such an enum; the [`Named`] trait lists its values. Nothing here
//! knows which enums exist.

use std::fmt;

/// An enum whose values each have one name.
pub trait Named: Copy + Eq + fmt::Debug + 'static {
    /// What a value is, for messages: `"split strategy"`.
    const WHAT: &'static str;
    /// Every value, in the order help lists them.
    const ALL: &'static [Self];

    fn name(self) -> &'static str;

    /// Every value's name.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }

    /// The value named `s` (exact match), or an error listing the valid names with the closest.
    fn from_name(s: &str) -> Result<Self, UnknownName> {
        let s = s.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownName::new(Self::WHAT, s, &Self::names()))
    }
}

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of {}", expected.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub expected: Vec<&'static str>,
}

impl UnknownName {
    pub fn new(what: &'static str, given: &str, expected: &[&'static str]) -> Self {
        Self {
            what,
            given: given.to_string(),
            expected: expected.to_vec(),
        }
    }

    /// `did you mean `temporal`?` when a valid name is close.
    pub fn hint(&self) -> Option<String> {
        did_you_mean(&self.given, &self.expected)
    }
}

/// The closest candidate to `word`, phrased as a hint, when one is close enough.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate most similar to `word` (Jaro-Winkler above 0.75).
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(s, _)| *s > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Declares an enum with one name per value, and implements [`Named`], `Display`, `FromStr`,
/// `Serialize` and `Deserialize` through those names.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Name:ident : $what:literal {
            $( $(#[$vmeta:meta])* $Var:ident = $s:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $Name { $( $(#[$vmeta])* $Var ),+ }

        impl $crate::names::Named for $Name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($Name::$Var),+];
            fn name(self) -> &'static str {
                match self { $($Name::$Var => $s),+ }
            }
        }

        impl ::std::fmt::Display for $Name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }

        impl ::std::str::FromStr for $Name {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$Name as $crate::names::Named>::from_name(s)
            }
        }

        impl ::serde::Serialize for $Name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::Named::name(*self))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $Name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                <$Name as $crate::names::Named>::from_name(&s).map_err(|e| {
                    let hint = e.hint().map(|h| format!(" ({h})")).unwrap_or_default();
                    ::serde::de::Error::custom(format!("{e}{hint}"))
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::named_enum! {
        enum Colour: "colour" { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn names_round_trip_through_display_fromstr_and_serde() {
        for c in Colour::ALL {
            assert_eq!(c.to_string().parse::<Colour>().unwrap(), *c);
            let j = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&j).unwrap(), *c);
        }
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones_and_the_closest() {
        let e = "dark_bleu".parse::<Colour>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown colour `dark_bleu`; expected one of red, dark_blue"
        );
        assert_eq!(e.hint().as_deref(), Some("did you mean `dark_blue`?"));
        let e = serde_json::from_str::<Colour>("\"redd\"").unwrap_err();
        assert!(e.to_string().contains("did you mean `red`?"), "{e}");
    }
}
