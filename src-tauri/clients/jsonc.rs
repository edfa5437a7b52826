//! How client files are read: JSON plus what VS Code and Cursor allow (JSONC), a key twice in
//! one object refused.

use serde_json::Value;

/// What import reads: JSON, plus the comments and trailing commas that VS Code and Cursor allow
/// in their files (JSONC). Nothing else of JSON5.
pub(super) fn options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// A client's config text as a JSON value (comments and trailing commas allowed). A key twice in
/// one object is refused: readers disagree on which one counts, and `--rewrite` must change the
/// entry that was imported.
pub fn read(text: &str) -> Result<Value, String> {
    let invalid = |e: jsonc_parser::errors::ParseError| {
        format!("not valid JSON: {e}; fix the file and import again")
    };
    let ast = jsonc_parser::parse_to_ast(text, &Default::default(), &options()).map_err(invalid)?;
    if let Some(value) = &ast.value {
        no_duplicate_keys(value, &mut Vec::new())?;
    }
    jsonc_parser::parse_to_serde_value::<Value>(text, &options()).map_err(invalid)
}

fn no_duplicate_keys(
    value: &jsonc_parser::ast::Value,
    path: &mut Vec<String>,
) -> Result<(), String> {
    use jsonc_parser::ast::Value as Node;
    match value {
        Node::Object(object) => {
            let mut seen = std::collections::HashSet::new();
            for prop in &object.properties {
                let name = prop.name.clone().into_string();
                path.push(name.clone());
                if !seen.insert(name) {
                    return Err(format!("the key \"{}\" appears twice in one object, and JSON readers disagree on which one counts; remove one and import again", path.join(".")));
                }
                no_duplicate_keys(&prop.value, path)?;
                path.pop();
            }
        }
        Node::Array(array) => {
            for element in &array.elements {
                no_duplicate_keys(element, path)?;
            }
        }
        Node::StringLit(_) | Node::NumberLit(_) | Node::BooleanLit(_) | Node::NullKeyword(_) => {}
    }
    Ok(())
}
