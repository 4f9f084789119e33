//! The access log: one line per request on stdout, written off the request path.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Version};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use crate::metrics::RouteLabels;

/// Lines waiting to be written; past this, lines are dropped rather than slow requests down.
const QUEUE: usize = 16 * 1024;

/// How requests are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// The combined log format of nginx and Apache.
    Combined,
    /// No access log.
    Off,
}

/// One finished request, as the access log records it.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub time: SystemTime,
    pub client: SocketAddr,
    pub method: Method,
    pub host: String,
    pub target: String,
    pub version: Version,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: f64,
    pub route: RouteLabels,
    pub upstream_addr: Option<String>,
    pub upstream_status: Option<u16>,
    pub upstream_time: Option<f64>,
    pub request_id: Option<HeaderValue>,
    pub trace_id: Option<String>,
    pub user_agent: Option<HeaderValue>,
    pub referer: Option<HeaderValue>,
    pub tls_version: Option<&'static str>,
}

/// Formats access-log lines and hands them to a writer task, never blocking a request.
#[derive(Debug)]
pub struct AccessLog {
    format: AccessLogFormat,
    lines: Option<mpsc::Sender<String>>,
}

impl AccessLog {
    /// Starts the writer task (none when `format` is [`AccessLogFormat::Off`]).
    pub fn start(format: AccessLogFormat) -> Self {
        if format == AccessLogFormat::Off {
            return Self {
                format,
                lines: None,
            };
        }
        let (sender, mut receiver) = mpsc::channel::<String>(QUEUE);
        tokio::spawn(async move {
            let mut stdout = tokio::io::BufWriter::new(tokio::io::stdout());
            while let Some(line) = receiver.recv().await {
                let mut written = stdout.write_all(line.as_bytes()).await;
                while let (Ok(()), Ok(line)) = (&written, receiver.try_recv()) {
                    written = stdout.write_all(line.as_bytes()).await;
                }
                if written.is_err() || stdout.flush().await.is_err() {
                    return;
                }
            }
        });
        Self {
            format,
            lines: Some(sender),
        }
    }

    /// Whether lines are written at all.
    pub(crate) fn enabled(&self) -> bool {
        self.lines.is_some()
    }

    pub(crate) fn write(&self, record: &AccessRecord) {
        let Some(lines) = &self.lines else { return };
        let line = match self.format {
            AccessLogFormat::Json => json_line(record),
            AccessLogFormat::Combined => combined_line(record),
            AccessLogFormat::Off => return,
        };
        if lines.try_send(line).is_err() {
            tracing::debug!("access log queue full; a line was dropped");
        }
    }
}

fn text(value: Option<&HeaderValue>) -> Option<String> {
    value.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

fn json_line(record: &AccessRecord) -> String {
    let mut line = serde_json::json!({
        "time": rfc3339(record.time),
        "request_id": text(record.request_id.as_ref()),
        "trace_id": record.trace_id,
        "client": record.client.to_string(),
        "method": record.method.as_str(),
        "host": record.host,
        "path": record.target,
        "protocol": format!("{:?}", record.version),
        "status": record.status,
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        "duration": record.duration,
        "upstream_addr": record.upstream_addr,
        "upstream_status": record.upstream_status,
        "upstream_time": record.upstream_time,
        "namespace": record.route.namespace.as_str(),
        "ingress": record.route.ingress.as_str(),
        "service": record.route.service.as_str(),
        "user_agent": text(record.user_agent.as_ref()),
        "tls_version": record.tls_version,
    })
    .to_string();
    line.push('\n');
    line
}

fn combined_line(record: &AccessRecord) -> String {
    let quoted = |value: Option<&HeaderValue>| {
        text(value).map_or_else(|| "-".to_owned(), |text| text.replace('"', "\\\""))
    };
    let mut line = String::with_capacity(160);
    let _ = writeln!(
        line,
        "{} - - [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\"",
        record.client.ip(),
        combined_time(record.time),
        record.method,
        record.target,
        record.version,
        record.status,
        record.bytes_out,
        quoted(record.referer.as_ref()),
        quoted(record.user_agent.as_ref()),
    );
    line
}

/// Splits a time into UTC (year, month, day, hour, minute, second, millisecond).
fn utc(time: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let elapsed = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = elapsed.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or_default();
    let (year, month, day) = civil_from_days(days);
    let of_day = seconds % 86_400;
    (
        year,
        month,
        day,
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60,
        elapsed.subsec_millis(),
    )
}

fn rfc3339(time: SystemTime) -> String {
    let (year, month, day, hour, minute, second, millis) = utc(time);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

fn combined_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, hour, minute, second, _) = utc(time);
    let name = MONTHS[usize::try_from(month.saturating_sub(1)).unwrap_or_default() % 12];
    format!("{day:02}/{name}/{year:04}:{hour:02}:{minute:02}:{second:02} +0000")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * month_index + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn record() -> AccessRecord {
        AccessRecord {
            time: UNIX_EPOCH + Duration::from_millis(1_795_598_425_123),
            client: "192.0.2.4:5000".parse().expect("address"),
            method: Method::GET,
            host: "shop.example".into(),
            target: "/cart?id=1".into(),
            version: Version::HTTP_11,
            status: 200,
            bytes_in: 0,
            bytes_out: 512,
            duration: 0.004,
            route: RouteLabels {
                namespace: Arc::new("shop".into()),
                ingress: Arc::new("web".into()),
                service: Arc::new("cart".into()),
            },
            upstream_addr: Some("10.0.0.7:8080".into()),
            upstream_status: Some(200),
            upstream_time: Some(0.003),
            request_id: Some(HeaderValue::from_static("abc")),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            user_agent: Some(HeaderValue::from_static("curl/8.0")),
            referer: None,
            tls_version: Some("TLSv1.3"),
        }
    }

    #[test]
    fn json_lines_carry_every_field() {
        let line = json_line(&record());
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(json["time"], "2026-11-25T09:20:25.123Z");
        assert_eq!(json["status"], 200);
        assert_eq!(json["service"], "cart");
        assert_eq!(json["upstream_addr"], "10.0.0.7:8080");
        assert_eq!(json["tls_version"], "TLSv1.3");
        assert_eq!(json["protocol"], "HTTP/1.1");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn combined_lines_look_like_nginx() {
        assert_eq!(
            combined_line(&record()),
            "192.0.2.4 - - [25/Nov/2026:09:20:25 +0000] \"GET /cart?id=1 HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"\n"
        );
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
    }
}
