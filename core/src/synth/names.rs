//! Words for a schema's names: `Song_release_year` → "song release year", `StuID` →
//! "student ID", `LName` → "last name", a table `Pets` → "pet" / "pets". Abbreviations common
//! in real schemas are spelled out, a column's leading table word is dropped (`concert_Name`
//! in `concert` → "name"), and a glossary entry whose term is a table or column name gives that
//! name's words. Plurals and singulars know the irregular nouns schemas use.

use std::collections::HashMap;

use crate::project::GlossaryEntry;
use crate::sql::schema::{Column, Schema, Table};

/// Abbreviations spelled out, as whole words (after splitting the name into words).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("acct", "account"),
    ("addr", "address"),
    ("amt", "amount"),
    ("apt", "apartment"),
    ("avg", "average"),
    ("bal", "balance"),
    ("cat", "category"),
    ("cnt", "count"),
    ("cust", "customer"),
    ("dept", "department"),
    ("desc", "description"),
    ("dob", "date of birth"),
    ("dt", "date"),
    ("emp", "employee"),
    ("fname", "first name"),
    ("hs", "high school"),
    ("id", "ID"),
    ("ids", "IDs"),
    ("info", "information"),
    ("lname", "last name"),
    ("loc", "location"),
    ("max", "maximum"),
    ("mgr", "manager"),
    ("min", "minimum"),
    ("num", "number"),
    ("nbr", "number"),
    ("no", "number"),
    ("org", "organization"),
    ("pct", "percent"),
    ("perc", "percent"),
    ("pop", "population"),
    ("prod", "product"),
    ("qty", "quantity"),
    ("ref", "reference"),
    ("sal", "salary"),
    ("stu", "student"),
    ("tel", "telephone"),
    ("temp", "temperature"),
    ("yr", "year"),
];

/// Irregular plurals, singular → plural.
const IRREGULAR: &[(&str, &str)] = &[
    ("person", "people"),
    ("child", "children"),
    ("man", "men"),
    ("woman", "women"),
    ("foot", "feet"),
    ("tooth", "teeth"),
    ("mouse", "mice"),
    ("goose", "geese"),
    ("datum", "data"),
    ("criterion", "criteria"),
    ("medium", "media"),
    ("staff", "staff"),
    ("series", "series"),
    ("species", "species"),
    ("information", "information"),
    ("equipment", "equipment"),
    ("music", "music"),
    ("news", "news"),
];

/// Words ending in `s` that are singular.
const SINGULAR_S: &[&str] = &[
    "status",
    "address",
    "class",
    "business",
    "process",
    "access",
    "campus",
    "bus",
    "census",
    "corpus",
    "virus",
    "analysis",
    "basis",
    "thesis",
    "axis",
    "series",
    "species",
    "news",
    "gas",
    "lens",
    "bonus",
    "canvas",
    "alias",
    "atlas",
    "chassis",
    "diagnosis",
    "genus",
    "radius",
    "sales",
    "statistics",
    "physics",
    "mathematics",
    "economics",
    "politics",
    "this",
    "its",
    "has",
    "is",
    "was",
    "as",
    "us",
    "yes",
    "plus",
    "minus",
    "always",
];

/// Splits an identifier into lower-case words: snake_case, camelCase, `StuID`, `LName`,
/// digits apart from letters.
pub fn split_words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for part in name.split(['_', ' ', '-', '.']) {
        if part.is_empty() {
            continue;
        }
        let chars: Vec<char> = part.chars().collect();
        let mut cur = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) => {
                    (p.is_lowercase() && c.is_uppercase())
                        || (p.is_alphabetic() && c.is_ascii_digit())
                        || (p.is_ascii_digit() && c.is_alphabetic())
                        // `IDNumber`: the last capital of a run starts the next word, unless
                        // the run is one letter (`LName` splits after L) — both cases alike.
                        || (p.is_uppercase()
                            && c.is_uppercase()
                            && next.is_some_and(|n| n.is_lowercase())
                            && !cur.is_empty())
                }
            };
            if boundary && !cur.is_empty() {
                words.push(cur.to_lowercase());
                cur = String::new();
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            words.push(cur.to_lowercase());
        }
    }
    // `l name` from `LName`: a lone letter before `name` is first/last.
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let next = words.get(i + 1).map(String::as_str);
        match (w.as_str(), next) {
            ("l", Some("name")) => {
                out.push("lname".into());
                i += 2;
            }
            ("f", Some("name")) => {
                out.push("fname".into());
                i += 2;
            }
            _ => {
                out.push(w.clone());
                i += 1;
            }
        }
    }
    out
}

/// The words of an identifier with abbreviations spelled out: `dept_no` → "department number".
pub fn human(name: &str) -> String {
    let words = split_words(name);
    let n = words.len();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            // `no` alone is not a number; `dept_no` is.
            if w == "no" && (n == 1 || i == 0) {
                return w.clone();
            }
            ABBREVIATIONS
                .iter()
                .find(|(a, _)| a == w)
                .map_or_else(|| w.clone(), |(_, full)| full.to_string())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The plural of a noun phrase (its last word): "pet" → "pets", "city" → "cities",
/// "person" → "people"; a phrase already plural stays as it is.
pub fn plural(phrase: &str) -> String {
    let (head, last) = match phrase.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l),
        None => (String::new(), phrase),
    };
    let lower = last.to_lowercase();
    if let Some((_, p)) = IRREGULAR.iter().find(|(s, p)| *s == lower || *p == lower) {
        return format!("{head}{p}");
    }
    // `apartment feature 1` → "apartment feature 1 values", not "… 1s".
    if !lower.is_empty() && lower.chars().all(|c| c.is_ascii_digit()) {
        return format!("{phrase} values");
    }
    if lower.is_empty() || last == "ID" {
        return format!("{head}{last}s");
    }
    if is_plural(&lower) {
        return phrase.to_string();
    }
    let p = if lower.ends_with('y')
        && !lower.ends_with("ay")
        && !lower.ends_with("ey")
        && !lower.ends_with("oy")
        && !lower.ends_with("uy")
    {
        format!("{}ies", &last[..last.len() - 1])
    } else if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with('z')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{last}es")
    } else {
        format!("{last}s")
    };
    format!("{head}{p}")
}

/// Whether a single lower-case word reads as a plural.
fn is_plural(word: &str) -> bool {
    if IRREGULAR.iter().any(|(_, p)| *p == word) {
        return true;
    }
    if SINGULAR_S.contains(&word) || word.ends_with("ss") || word.ends_with("us") {
        return false;
    }
    word.len() > 2 && word.ends_with('s')
}

/// The singular of a noun phrase (its last word): "pets" → "pet", "cities" → "city",
/// "people" → "person", "addresses" → "address".
pub fn singular(phrase: &str) -> String {
    let (head, last) = match phrase.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l),
        None => (String::new(), phrase),
    };
    let lower = last.to_lowercase();
    if let Some((s, _)) = IRREGULAR.iter().find(|(_, p)| *p == lower) {
        return format!("{head}{s}");
    }
    if !is_plural(&lower) {
        return phrase.to_string();
    }
    let s = if let Some(stem) = last.strip_suffix("ies") {
        format!("{stem}y")
    } else if lower.ends_with("sses")
        || lower.ends_with("uses")
        || lower.ends_with("xes")
        || lower.ends_with("zes")
        || lower.ends_with("ches")
        || lower.ends_with("shes")
    {
        last[..last.len() - 2].to_string()
    } else {
        last[..last.len() - 1].to_string()
    };
    format!("{head}{s}")
}

/// "a" or "an" before a word.
pub fn article(word: &str) -> &'static str {
    let lower = word.to_lowercase();
    let first = lower.chars().next().unwrap_or('x');
    let vowel = "aeiou".contains(first)
        && !lower.starts_with("uni")
        && !lower.starts_with("use")
        && !lower.starts_with("eu")
        && !lower.starts_with("one");
    if vowel || word.starts_with("ID") || lower.starts_with("hour") {
        "an"
    } else {
        "a"
    }
}

/// The words for one schema's tables and columns.
#[derive(Debug, Clone, Default)]
pub struct Names {
    tables: HashMap<String, String>,
    columns: HashMap<(String, String), String>,
}

impl Names {
    /// Words for every table and column of `schema`, with glossary entries that name a table
    /// or a column (`{"key": "hs", "value": "high school"}`) used as their words.
    pub fn new(schema: &Schema, glossary: &[GlossaryEntry]) -> Names {
        let gloss: HashMap<String, String> = glossary
            .iter()
            .filter(|g| {
                let d = g.definition.trim();
                // A short plain phrase, not a rule or a formula.
                !d.is_empty()
                    && d.split_whitespace().count() <= 5
                    && d.chars()
                        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
            })
            .map(|g| {
                (
                    g.term.trim().to_lowercase(),
                    g.definition.trim().to_lowercase(),
                )
            })
            .collect();
        let mut names = Names::default();
        for t in &schema.tables {
            let words = gloss
                .get(&t.name.to_lowercase())
                .cloned()
                .unwrap_or_else(|| table_words(&t.name));
            names.tables.insert(t.name.to_lowercase(), singular(&words));
            for c in &t.columns {
                let words = gloss
                    .get(&c.name.to_lowercase())
                    .or_else(|| gloss.get(&format!("{}.{}", t.name, c.name).to_lowercase()))
                    .cloned()
                    .unwrap_or_else(|| column_words(t, c));
                names
                    .columns
                    .insert((t.name.to_lowercase(), c.name.to_lowercase()), words);
            }
        }
        names
    }

    /// One row of the table, in words: `Pets` → "pet", `singer_in_concert` → "singer in
    /// concert".
    pub fn one(&self, table: &str) -> String {
        self.tables
            .get(&table.to_lowercase())
            .cloned()
            .unwrap_or_else(|| singular(&table_words(table)))
    }

    /// Rows of the table, in words: "pets", "people".
    pub fn many(&self, table: &str) -> String {
        plural(&self.one(table))
    }

    /// A column in words, without its table's own word: `concert_Name` in `concert` → "name".
    pub fn column(&self, table: &str, column: &str) -> String {
        self.columns
            .get(&(table.to_lowercase(), column.to_lowercase()))
            .cloned()
            .unwrap_or_else(|| human(column))
    }
}

fn table_words(name: &str) -> String {
    let mut words = human(name);
    // `Ref_Property_Types` → "property type"; `tbl_orders` → "order".
    for prefix in ["reference ", "ref ", "tbl ", "table "] {
        if let Some(rest) = words.strip_prefix(prefix)
            && !rest.is_empty()
        {
            words = rest.to_string();
        }
    }
    words
}

fn column_words(table: &Table, column: &Column) -> String {
    let words = human(&column.name);
    let one = singular(&table_words(&table.name));
    // `concert_Name` in `concert` → "name"; `pet_age` in `Pets` → "age"; but `Singer_ID`
    // stays "singer ID" when the column is the table's own key, which reads better.
    // A count named by its verb: `killed` → "number killed".
    let numeric = !column.samples.is_empty()
        && column.samples.iter().all(|v| {
            matches!(
                v,
                crate::sql::Value::Integer(_) | crate::sql::Value::Real(_)
            )
        });
    if numeric && !words.contains(' ') && words.ends_with("ed") && words.len() > 4 {
        return format!("number {words}");
    }
    // `Course` in `course`: the row's own name.
    if words == one || words == plural(&one) {
        return "name".to_string();
    }
    // A lone comparative word (`Highest`, `Average`) is a figure, not a direction.
    if [
        "highest", "lowest", "average", "maximum", "minimum", "total", "best", "worst", "mean",
        "max", "min",
    ]
    .contains(&words.as_str())
    {
        return format!("{words} figure");
    }
    for lead in [one.clone(), plural(&one)] {
        if let Some(rest) = words.strip_prefix(&format!("{lead} "))
            && !rest.is_empty()
            && rest != "ID"
        {
            return rest.to_string();
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_words() {
        assert_eq!(human("Song_release_year"), "song release year");
        assert_eq!(human("StuID"), "student ID");
        assert_eq!(human("LName"), "last name");
        assert_eq!(human("Fname"), "first name");
        assert_eq!(human("PetType"), "pet type");
        assert_eq!(human("dept_no"), "department number");
        assert_eq!(human("IDNumber"), "ID number");
        assert_eq!(human("apt_feature_1"), "apartment feature 1");
        assert_eq!(human("Net_Worth_Millions"), "net worth millions");
        assert_eq!(human("no"), "no");
    }

    #[test]
    fn plurals_and_singulars() {
        for (one, many) in [
            ("pet", "pets"),
            ("city", "cities"),
            ("person", "people"),
            ("address", "addresses"),
            ("match", "matches"),
            ("day", "days"),
            ("property type", "property types"),
            ("status", "statuses"),
        ] {
            assert_eq!(plural(one), many, "{one}");
            assert_eq!(singular(many), one, "{many}");
        }
        assert_eq!(plural("pets"), "pets");
        assert_eq!(plural("apartment feature 1"), "apartment feature 1 values");
        assert_eq!(plural("student ID"), "student IDs");
        assert_eq!(singular("pet"), "pet");
        assert_eq!(article("ID"), "an");
        assert_eq!(article("age"), "an");
        assert_eq!(article("unit"), "a");
    }

    #[test]
    fn names_drop_the_tables_own_word_and_take_glossary_words() {
        let col = |name: &str| Column {
            name: name.into(),
            ..Default::default()
        };
        let schema = Schema {
            tables: vec![
                Table {
                    name: "concert".into(),
                    columns: vec![col("concert_Name"), col("Year"), col("concert_ID")],
                    ..Default::default()
                },
                Table {
                    name: "Pets".into(),
                    columns: vec![col("pet_age"), col("hs")],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let glossary = vec![GlossaryEntry {
            term: "hs".into(),
            definition: "home shelter".into(),
        }];
        let n = Names::new(&schema, &glossary);
        assert_eq!(n.column("concert", "concert_Name"), "name");
        assert_eq!(n.column("concert", "concert_ID"), "concert ID");
        assert_eq!(n.column("pets", "PET_AGE"), "age");
        assert_eq!(n.column("Pets", "hs"), "home shelter");
        assert_eq!(n.one("Pets"), "pet");
        assert_eq!(n.many("Pets"), "pets");
        assert_eq!(n.many("concert"), "concerts");
    }
}
