/// `send_welcome_email` -> `SendWelcomeEmail`; a leading `r#` is dropped.
pub fn upper_camel(snake: &str) -> String {
    let snake = snake.strip_prefix("r#").unwrap_or(snake);
    let mut out = String::with_capacity(snake.len());
    let mut upper = true;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::upper_camel;

    #[test]
    fn converts_snake_case() {
        assert_eq!(upper_camel("send_welcome_email"), "SendWelcomeEmail");
        assert_eq!(upper_camel("hash"), "Hash");
        assert_eq!(upper_camel("sync_v2_api"), "SyncV2Api");
        assert_eq!(upper_camel("_private_job"), "PrivateJob");
        assert_eq!(upper_camel("r#type"), "Type");
    }
}
