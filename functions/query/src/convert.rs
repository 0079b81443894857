//! API Gateway HTTP API (payload format 2.0) events to and from the
//! transport-free [`ApiRequest`] and [`ApiResponse`].

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use folio_api::{ApiRequest, ApiResponse, error_response};

/// Converts an HTTP API event. A body that is flagged base64 but does not
/// decode gets a 400 response instead of a request.
pub fn to_api_request(event: ApiGatewayV2httpRequest) -> Result<ApiRequest, ApiResponse> {
    let method = event.request_context.http.method.as_str().to_owned();
    let raw_path = event
        .raw_path
        .clone()
        .or_else(|| event.request_context.http.path.clone())
        .unwrap_or_else(|| "/".to_owned());
    let path = strip_stage(&raw_path, event.request_context.stage.as_deref()).to_owned();

    let query = match event.raw_query_string.as_deref() {
        // The raw string keeps repeated parameters apart; queryStringParameters joins them with commas.
        Some(raw) if !raw.is_empty() => form_urlencoded::parse(raw.as_bytes()).into_owned().collect(),
        _ => event
            .query_string_parameters
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
    };

    // HeaderMap looks names up case-insensitively.
    let content_type = event
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);

    let body = match (event.body, event.is_base64_encoded) {
        (None, _) => bytes::Bytes::new(),
        (Some(text), false) => bytes::Bytes::from(text),
        (Some(text), true) => match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            Ok(decoded) => bytes::Bytes::from(decoded),
            Err(error) => {
                let message = format!("the request body is flagged base64-encoded but does not decode: {error}");
                return Err(error_response(400, "invalid_body", &message));
            }
        },
    };

    Ok(ApiRequest {
        method,
        path,
        query,
        content_type,
        body,
    })
}

/// Removes the `/{stage}` prefix that API Gateway keeps in the raw path of
/// a named stage; the `$default` stage has none.
fn strip_stage<'a>(raw_path: &'a str, stage: Option<&str>) -> &'a str {
    match stage {
        Some(stage) if stage != "$default" && !stage.is_empty() => {
            let prefix_length = stage.len() + 1;
            let stripped = raw_path
                .strip_prefix('/')
                .and_then(|rest| rest.strip_prefix(stage))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'));
            match stripped {
                Some("") => "/",
                Some(_) => &raw_path[prefix_length..],
                None => raw_path,
            }
        }
        _ => raw_path,
    }
}

/// Converts a response; the body is JSON text, so it is never base64-encoded.
pub fn to_gateway_response(response: ApiResponse) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    let content_type = HeaderValue::from_str(&response.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/json"));
    headers.insert(header::CONTENT_TYPE, content_type);
    // Built from Default because the type is #[non_exhaustive].
    let mut gateway = ApiGatewayV2httpResponse::default();
    gateway.status_code = i64::from(response.status);
    gateway.headers = headers;
    gateway.body = Some(match String::from_utf8(response.body) {
        Ok(text) => Body::Text(text),
        Err(error) => Body::Binary(error.into_bytes()),
    });
    gateway.is_base64_encoded = false;
    gateway
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> ApiGatewayV2httpRequest {
        let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    #[test]
    fn to_api_request_reads_similar_event() {
        let request = to_api_request(event("similar.json")).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/documents/letters%2F1999%2Fmemo%20one.tif/similar");
        assert_eq!(
            request.query,
            vec![("k".to_owned(), "5".to_owned()), ("min_score".to_owned(), "0.25".to_owned())]
        );
        assert_eq!(request.content_type, None);
        assert!(request.body.is_empty());
    }

    #[test]
    fn to_api_request_decodes_base64_scan() {
        let request = to_api_request(event("search-scan.json")).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/search");
        assert_eq!(request.content_type.as_deref(), Some("image/png"));
        assert!(request.body.starts_with(b"\x89PNG\r\n\x1a\n"), "{:?}", &request.body[..8]);
        assert_eq!(request.body.len(), 67);
        assert_eq!(request.query[1], ("page".to_owned(), "1".to_owned()));
    }

    #[test]
    fn to_api_request_content_type_any_case() {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{}/events/search-scan.json", env!("CARGO_MANIFEST_DIR"))).unwrap())
                .unwrap();
        let headers = json["headers"].as_object_mut().unwrap();
        headers.remove("content-type");
        headers.insert("Content-Type".into(), "application/json; charset=utf-8".into());
        json["body"] = r#"{"document": "a.tif"}"#.into();
        json["isBase64Encoded"] = false.into();
        let request = to_api_request(serde_json::from_value(json).unwrap()).unwrap();
        assert_eq!(request.content_type.as_deref(), Some("application/json; charset=utf-8"));
        assert_eq!(&request.body[..], br#"{"document": "a.tif"}"#);
    }

    #[test]
    fn to_api_request_rejects_bad_base64() {
        let mut broken = event("search-scan.json");
        broken.body = Some("not base64!".to_owned());
        let response = to_api_request(broken).unwrap_err();
        assert_eq!(response.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_body");
    }

    #[test]
    fn to_api_request_without_raw_query() {
        let mut without_raw = event("similar.json");
        without_raw.raw_query_string = None;
        let mut query = to_api_request(without_raw).unwrap().query;
        query.sort();
        assert_eq!(
            query,
            vec![("k".to_owned(), "5".to_owned()), ("min_score".to_owned(), "0.25".to_owned())]
        );
    }

    #[test]
    fn strip_stage_removes_named_stage_only() {
        assert_eq!(strip_stage("/prod/search", Some("prod")), "/search");
        assert_eq!(strip_stage("/prod", Some("prod")), "/");
        assert_eq!(strip_stage("/production/search", Some("prod")), "/production/search");
        assert_eq!(strip_stage("/search", Some("$default")), "/search");
        assert_eq!(strip_stage("/search", None), "/search");
    }

    #[test]
    fn to_gateway_response_sets_json_body() {
        let response = to_gateway_response(error_response(404, "unknown_route", "no route GET /x"));
        assert_eq!(response.status_code, 404);
        assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
        let Some(Body::Text(text)) = &response.body else {
            panic!("expected a text body, got {:?}", response.body);
        };
        assert!(text.contains("unknown_route"), "{text}");
        let serialised = serde_json::to_value(&response).unwrap();
        assert_eq!(serialised["statusCode"], 404);
        assert_eq!(serialised["isBase64Encoded"], false);
    }
}
