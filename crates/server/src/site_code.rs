//! Site enrollment codes: WORD-WORD-NUMBER (for example `AMBER-RIVER-4821`), easy to read out
//! over the phone and type on a client's machine.

use rand::seq::SliceRandom;
use rand::Rng;

const WORDS: &[&str] = &[
    "AMBER", "ASPEN", "AZURE", "BASIL", "BIRCH", "BLAZE", "BROOK", "CEDAR", "CLOUD", "CORAL",
    "COVE", "CRANE", "CREST", "DAWN", "DELTA", "DUNE", "EAGLE", "EMBER", "FALCON", "FERN", "FJORD",
    "FLINT", "FROST", "GLADE", "GROVE", "HARBOR", "HAZEL", "HERON", "IVORY", "JADE", "JUNIPER",
    "LAKE", "LARCH", "LILAC", "LOTUS", "MAPLE", "MARSH", "MEADOW", "MESA", "MINT", "MOSS", "NORTH",
    "OAK", "OCEAN", "OLIVE", "ONYX", "ORBIT", "OTTER", "PEARL", "PEBBLE", "PINE", "PLAIN", "POLAR",
    "PRAIRIE", "QUARTZ", "RAVEN", "REEF", "RIDGE", "RIVER", "ROBIN", "SAGE", "SHORE", "SIERRA",
    "SILVER", "SLATE", "SPRUCE", "STONE", "STORM", "SUMMIT", "SUNNY", "TIDE", "TIMBER", "TOPAZ",
    "TUNDRA", "VALLEY", "WILLOW", "WIND", "WREN",
];

/// A random code; uniqueness is the database's job (the caller retries on a clash).
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    let mut pick = || *WORDS.choose(&mut rng).expect("word list is not empty");
    let (a, b) = (pick(), pick());
    let n: u16 = rand::thread_rng().gen_range(1000..=9999);
    format!("{a}-{b}-{n}")
}

/// Whether a string has the shape of a site code (as opposed to a `grmm_` key).
pub fn is_site_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[..2]
            .iter()
            .all(|w| !w.is_empty() && w.len() <= 16 && w.chars().all(|c| c.is_ascii_uppercase()))
        && (4..=6).contains(&parts[2].len())
        && parts[2].chars().all(|c| c.is_ascii_digit())
}

/// Codes are matched case-insensitively: technicians type them by hand.
pub fn normalize(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_documented_shape() {
        for _ in 0..200 {
            let code = generate();
            assert!(is_site_code(&code), "{code}");
        }
    }

    #[test]
    fn shape_check() {
        assert!(is_site_code("AMBER-RIVER-4821"));
        assert!(is_site_code(&normalize(" amber-river-4821 ")));
        for bad in [
            "grmm_abc",
            "AMBER-RIVER",
            "AMBER-RIVER-48",
            "AMBER-RIVER-4821-1",
            "AMBER-R1VER-4821",
            "",
        ] {
            assert!(!is_site_code(bad), "{bad}");
        }
    }
}
