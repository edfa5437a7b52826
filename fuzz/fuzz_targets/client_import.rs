//! `import`: another client's config file (JSONC) into broker entries, then `--rewrite` of the
//! same text. A rewrite must parse again and point every rewritten entry at the broker.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::clients::edit::rewrite;
use mcp_auth_broker::clients::parse::{parse, read, Source};

const PORT: u16 = 47823;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let source = [Source::Claude, Source::Cursor, Source::Vscode, Source::Litellm][pick as usize % 4];
    let Ok(plan) = parse(source, text, PORT) else { return };
    let urls: Vec<(Vec<String>, String)> = plan
        .found
        .iter()
        .map(|f| (f.location.clone(), format!("http://127.0.0.1:{PORT}/{}/mcp", f.name)))
        .collect();
    let rewritten = rewrite(source, text, &urls).expect("a file that parsed can be rewritten");
    let doc = read(&rewritten).expect("the rewritten file parses");
    for (location, url) in &urls {
        let mut at = &doc;
        for key in location {
            at = &at[key.as_str()];
        }
        assert_eq!(at["url"].as_str(), Some(url.as_str()), "{location:?} points at the broker");
    }
});
