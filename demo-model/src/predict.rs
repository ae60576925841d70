//! `POST .../predict`: a JSON request answered with a JSON prediction that
//! depends only on the input, so tests can check what came back.
//!
//! With `{"inputs": [numbers]}` the prediction is their count, sum and
//! mean; with any other JSON it is the number of top-level keys (0 for a
//! value that is not an object).

use std::fmt::Display;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::Value;

use crate::{Replica, ReplyBody, error, json};

/// The largest request body accepted, in bytes.
const MAX_BODY: u64 = 1 << 20;

/// How many bytes of a too-large body are read and thrown away before
/// answering 413. Reading the rest lets the client see the 413; closing
/// with unread data would reset the connection and lose the answer. A body
/// declared larger than this is refused at once.
const DRAIN_LIMIT: u64 = 8 << 20;

/// How long the client gets to send the whole body.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the request body could not be read.
#[derive(Debug, PartialEq)]
enum ReadError {
    TooLarge,
    Client(String),
}

/// The prediction for one input.
#[derive(Debug, PartialEq, Serialize)]
#[serde(untagged)]
enum Prediction {
    /// For `{"inputs": [numbers]}`.
    Summary {
        count: usize,
        sum: f64,
        /// `None` (`null`) for no inputs.
        mean: Option<f64>,
    },
    /// For any other JSON.
    Keys { keys: usize },
}

/// Answers a prediction request.
pub(crate) async fn respond<B>(replica: &Replica, req: Request<B>) -> Response<ReplyBody>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    let body = match read_request_body(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let input: Value = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(parse) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {parse}")),
    };
    let prediction = match predict(&input) {
        Ok(prediction) => prediction,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };

    #[derive(Serialize)]
    struct Answer<'a> {
        model: &'a str,
        replica: &'a str,
        input_bytes: usize,
        prediction: Prediction,
    }
    json(
        StatusCode::OK,
        &Answer {
            model: &replica.model.id,
            replica: &replica.addr,
            input_bytes: body.len(),
            prediction,
        },
    )
}

/// Reads a request's whole body (at most [`MAX_BODY`] bytes, within
/// [`READ_TIMEOUT`]), or gives the error answer: 413, 400 or 408.
pub(crate) async fn read_request_body<B>(req: Request<B>) -> Result<Bytes, Response<ReplyBody>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = tokio::time::timeout(READ_TIMEOUT, read_body(req.into_body(), declared)).await;
    match read {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(ReadError::TooLarge)) => {
            let message = format!("request body is larger than {MAX_BODY} bytes");
            Err(error(StatusCode::PAYLOAD_TOO_LARGE, &message))
        }
        Ok(Err(ReadError::Client(message))) => {
            let message = format!("reading the request body failed: {message}");
            Err(error(StatusCode::BAD_REQUEST, &message))
        }
        Err(_elapsed) => {
            let message = format!("request body not received within {READ_TIMEOUT:?}");
            Err(error(StatusCode::REQUEST_TIMEOUT, &message))
        }
    }
}

/// Reads the whole body if it is at most [`MAX_BODY`] bytes. A larger one
/// is drained up to [`DRAIN_LIMIT`] so that the 413 reaches the client.
async fn read_body<B>(mut body: B, declared: Option<u64>) -> Result<Bytes, ReadError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Err(ReadError::TooLarge);
    }
    let mut kept = BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Client(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen += data.len() as u64;
        if seen <= MAX_BODY {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            return Err(ReadError::TooLarge);
        } else if !kept.is_empty() {
            kept = BytesMut::new(); // over the limit: keep nothing more
        }
    }
    if seen > MAX_BODY {
        return Err(ReadError::TooLarge);
    }
    Ok(kept.freeze())
}

/// The model itself: a pure function of the input.
fn predict(input: &Value) -> Result<Prediction, &'static str> {
    match input.get("inputs") {
        Some(Value::Array(items)) => {
            let numbers = items
                .iter()
                .map(Value::as_f64)
                .collect::<Option<Vec<f64>>>()
                .ok_or("\"inputs\" must be an array of numbers")?;
            let count = numbers.len();
            let sum: f64 = numbers.iter().sum();
            let mean = (count > 0).then(|| sum / count as f64);
            Ok(Prediction::Summary { count, sum, mean })
        }
        Some(_) => Err("\"inputs\" must be an array of numbers"),
        None => Ok(Prediction::Keys {
            keys: input.as_object().map_or(0, serde_json::Map::len),
        }),
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use serde_json::json;

    use super::*;

    #[test]
    fn predicts_from_inputs_or_keys() {
        assert_eq!(
            predict(&json!({"inputs": [1, 2.5, 3.5]})),
            Ok(Prediction::Summary {
                count: 3,
                sum: 7.0,
                mean: Some(7.0 / 3.0)
            })
        );
        assert_eq!(
            predict(&json!({"inputs": []})),
            Ok(Prediction::Summary {
                count: 0,
                sum: 0.0,
                mean: None
            })
        );
        assert_eq!(
            predict(&json!({"a": 1, "b": [2]})),
            Ok(Prediction::Keys { keys: 2 })
        );
        assert_eq!(predict(&json!("text")), Ok(Prediction::Keys { keys: 0 }));
        assert!(predict(&json!({"inputs": [1, "x"]})).is_err());
        assert!(predict(&json!({"inputs": 3})).is_err());
    }

    #[test]
    fn overflowing_sums_serialize_as_null() {
        let prediction = predict(&json!({"inputs": [1e308, 1e308]})).unwrap();
        let text = serde_json::to_string(&prediction).unwrap();
        assert_eq!(text, r#"{"count":2,"sum":null,"mean":null}"#);
    }

    #[tokio::test]
    async fn reads_up_to_the_limit() {
        let exact = Full::new(Bytes::from(vec![b'x'; 1 << 20]));
        assert_eq!(read_body(exact, None).await.unwrap().len(), 1 << 20);

        let over = Full::new(Bytes::from(vec![b'x'; (1 << 20) + 1]));
        assert_eq!(read_body(over, None).await, Err(ReadError::TooLarge));

        let declared_huge = Full::new(Bytes::new());
        assert_eq!(
            read_body(declared_huge, Some(DRAIN_LIMIT + 1)).await,
            Err(ReadError::TooLarge)
        );
    }
}
