//! gunicorn's control-socket wire format, as pure functions over bytes: each message is a
//! 4-byte big-endian length and that many bytes of UTF-8 JSON. A request is
//! `{"id": 1, "command": "show workers", "args": []}`; a reply is
//! `{"id": 1, "status": "ok", "data": {...}}` or `{"id": 1, "status": "error", "error": "..."}`.
//!
//! No sockets here: `take_request` consumes a buffer, `encode` makes one. Parsing the command
//! words into something to do is `commands.rs`'s job.

use serde_json::{json, Map, Value};

/// Largest request payload accepted. gunicorn allows 16 MiB, but no command is longer than a
/// line; a bigger frame is a broken or hostile client and is refused before it is buffered.
pub const MAX_FRAME: usize = 1024 * 1024;

/// One decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Echoed in the reply; gunicorn treats a missing id as 0.
    pub id: Value,
    /// The command line, e.g. `show workers` or `worker add 2`.
    pub command: String,
    /// Extra words appended to the command (gunicorn stringifies each).
    pub args: Vec<String>,
}

/// Why a frame could not be read. After one, the reply is an error and the connection closes:
/// where the next frame would start is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Message too large: {0} bytes (at most {MAX_FRAME})")]
    TooLarge(usize),
    #[error("Invalid JSON: {0}")]
    NotJson(String),
    #[error("Invalid message: expected a JSON object with a \"command\" string")]
    NotARequest,
}

/// Takes one complete request off the front of `buf`. `Ok(None)`: more bytes are needed. A
/// length over `MAX_FRAME` fails as soon as the 4-byte prefix is in, before any payload.
pub fn take_request(buf: &mut Vec<u8>) -> Result<Option<Request>, ProtocolError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > MAX_FRAME {
        return Err(ProtocolError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let parsed = parse_request(&buf[4..4 + len]);
    buf.drain(..4 + len);
    parsed.map(Some)
}

/// A payload as gunicorn's server reads it: `id` defaults to 0, `args` to none, and each arg
/// is turned into a string (`2` and `"2"` mean the same).
pub fn parse_request(payload: &[u8]) -> Result<Request, ProtocolError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(ProtocolError::NotARequest);
    };
    let command = match obj.remove("command") {
        Some(Value::String(s)) => s,
        None => String::new(),
        Some(_) => return Err(ProtocolError::NotARequest),
    };
    let args = match obj.remove("args") {
        Some(Value::Array(items)) => items.into_iter().map(arg_string).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ProtocolError::NotARequest),
    };
    Ok(Request {
        id: obj.remove("id").unwrap_or(json!(0)),
        command,
        args,
    })
}

/// Python's `str(a)` for the JSON values a client may send as args.
fn arg_string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// `{"id", "status": "ok", "data"}`.
pub fn ok(id: &Value, data: Value) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), id.clone());
    m.insert("status".into(), "ok".into());
    m.insert("data".into(), data);
    Value::Object(m)
}

/// `{"id", "status": "error", "error"}`.
pub fn error(id: &Value, message: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), id.clone());
    m.insert("status".into(), "error".into());
    m.insert("error".into(), message.into());
    Value::Object(m)
}

/// One framed message: length prefix + JSON.
pub fn encode(msg: &Value) -> Vec<u8> {
    let payload = msg.to_string().into_bytes();
    // a reply is far below 4 GiB: stacks and tables are bounded by the table sizes
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn a_request_split_across_reads_is_taken_once_complete() {
        let whole = frame(br#"{"id": 7, "command": "worker add", "args": [2]}"#);
        let mut buf = whole[..3].to_vec();
        assert_eq!(take_request(&mut buf), Ok(None));
        buf.extend_from_slice(&whole[3..10]);
        assert_eq!(take_request(&mut buf), Ok(None));
        buf.extend_from_slice(&whole[10..]);
        let req = take_request(&mut buf).unwrap().unwrap();
        assert_eq!(req.id, json!(7));
        assert_eq!(req.command, "worker add");
        assert_eq!(req.args, vec!["2".to_owned()]);
        assert!(buf.is_empty());
    }

    #[test]
    fn pipelined_requests_come_out_in_order() {
        let mut buf = frame(br#"{"id": 1, "command": "help"}"#);
        buf.extend(frame(br#"{"id": 2, "command": "show stats"}"#));
        assert_eq!(take_request(&mut buf).unwrap().unwrap().id, json!(1));
        let second = take_request(&mut buf).unwrap().unwrap();
        assert_eq!(
            (second.id, second.command.as_str()),
            (json!(2), "show stats")
        );
        assert_eq!(take_request(&mut buf), Ok(None));
    }

    #[test]
    fn an_oversized_length_is_refused_before_its_payload_arrives() {
        let mut buf = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        assert_eq!(
            take_request(&mut buf),
            Err(ProtocolError::TooLarge(MAX_FRAME + 1))
        );
        let mut buf = u32::MAX.to_be_bytes().to_vec();
        assert!(matches!(
            take_request(&mut buf),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"not json",
            b"\xff\xfe",
            b"[1, 2]",
            br#"{"command": 5}"#,
            br#"{"command": "x", "args": "y"}"#,
        ] {
            let mut buf = frame(bad);
            assert!(take_request(&mut buf).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_fields_take_gunicorns_defaults() {
        let req = parse_request(br#"{"command": "help"}"#).unwrap();
        assert_eq!((req.id, req.args.len()), (json!(0), 0));
        let req = parse_request(br#"{}"#).unwrap();
        assert_eq!(req.command, "");
        let req = parse_request(br#"{"command": "x", "args": ["a", 1, true, null]}"#).unwrap();
        assert_eq!(req.args, ["a", "1", "True", "None"]);
    }

    #[test]
    fn replies_are_length_prefixed_json() {
        let out = encode(&ok(&json!(3), json!({"count": 2})));
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        let v: Value = serde_json::from_slice(&out[4..]).unwrap();
        assert_eq!(v, json!({"id": 3, "status": "ok", "data": {"count": 2}}));
        let v: Value = serde_json::from_slice(&encode(&error(&json!(1), "nope"))[4..]).unwrap();
        assert_eq!(v, json!({"id": 1, "status": "error", "error": "nope"}));
    }
}
