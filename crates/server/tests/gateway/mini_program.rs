//! `MAPPPAY`: WeChat Pay inside the merchant's mini-program, through the simulated WeChat
//! Pay — the JSAPI order for the named buyer, `payInfo`, the simulated `wx.requestPayment`
//! checking `paySign`, the callback, STATUS_QUERY, REFUND; replays; bad input refused by
//! name. All through real HTTP.

use ottgate_client::{Exchange, Fields};
use ottgate_testkit::Fetch;
use serde_json::{Value, json};

use crate::harness::TestGateway;

const APP_ID: &str = "wx5f89682208cf8e88";

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(fields) => fields,
        other => panic!("not an object: {other}"),
    }
}

/// A MAPPPAY as the doc's example sends it (`appId`; an `openId` added, which WeChat needs).
fn request(t: &TestGateway, order_id: &str) -> Fields {
    fields(json!({
        "amount": "880", "biz_type": "WECHATPAY",
        "operator_id": t.merchant.merchant.operator_id.as_str(),
        "order_id": order_id, "appId": APP_ID, "openId": "oMiniBuyer0001",
        "call_back_url": t.receiver_url.join("notify").unwrap().to_string(),
        "sale_num": "S-9",
    }))
}

async fn send(t: &TestGateway, version: &str, data: Fields) -> Exchange {
    t.client.exchange("MAPPPAY", version, data).await.unwrap()
}

/// What the mini-program does with `payInfo`: `wx.requestPayment`, `packageStr` passed as
/// `package` and no `appId`.
async fn request_payment(t: &TestGateway, pay_info: &Value, action: &str) -> String {
    let body = json!({
        "timeStamp": pay_info["timeStamp"], "nonceStr": pay_info["nonceStr"],
        "package": pay_info["packageStr"], "signType": pay_info["signType"],
        "paySign": pay_info["paySign"], "action": action,
    });
    let r = t
        .post("sim/wechatpay/miniprogram/requestPayment")
        .json(&body)
        .fetch()
        .await;
    let answer: Value = r.json().await.unwrap();
    answer["errMsg"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_mini_program_payment_is_signed_for_wx_request_payment_and_paid() {
    let t = TestGateway::start().await;
    let first = send(&t, "1.0", request(&t, "MINI-1")).await;
    assert_eq!(
        first.response.rsp_code, "SUCCESS",
        "{}",
        first.response.rsp_msg
    );
    let answer = first.response_fields.clone().unwrap();
    let pay_info = &answer["payInfo"];
    assert_eq!(
        pay_info["appId"], APP_ID,
        "signed under the mini-program's app id"
    );
    assert!(
        pay_info["packageStr"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    assert_eq!(
        (
            answer["order_id"].as_str(),
            answer["amount"].as_str(),
            answer["sale_num"].as_str()
        ),
        (Some("MINI-1"), Some("880"), Some("S-9"))
    );
    // The same request again replays the answer; other content under the order_id is used.
    let again = send(&t, "1.0", request(&t, "MINI-1")).await;
    assert_eq!(again.response_fields.unwrap(), answer);
    let mut other = request(&t, "MINI-1");
    other.insert("amount".into(), "1".into());
    assert_eq!(send(&t, "1.0", other).await.response.rsp_code, "ORDER_USED");

    // WeChat checks paySign: a forged one pays nothing.
    let mut forged = pay_info.clone();
    forged["paySign"] = "0123456789ABCDEF0123456789ABCDEF".into();
    assert_eq!(
        request_payment(&t, &forged, "pay").await,
        "requestPayment:fail invalid paySign"
    );
    assert_eq!(
        request_payment(&t, pay_info, "pay").await,
        "requestPayment:ok"
    );

    let callback = t
        .client
        .verify_callback(&t.receiver.wait_for(1).await[0])
        .unwrap();
    assert_eq!(
        (callback.order_id.as_str(), callback.order_status.as_str()),
        ("MINI-1", "success")
    );
    let status = t.client.status_query("MINI-1").await.unwrap();
    assert_eq!(
        (status.order_status.as_str(), status.payment_method.as_str()),
        ("success", "WECHATPAY")
    );
    let refund = t.client.refund("MINI-1", "80", None).await.unwrap();
    assert_eq!(refund.refund_status, "success");
}

#[tokio::test]
async fn version_1_1_and_the_snake_case_names_are_taken_too() {
    let t = TestGateway::start().await;
    let mut data = request(&t, "MINI-2");
    data.remove("appId");
    data.remove("openId");
    data.insert("app_id".into(), APP_ID.into());
    data.insert("open_id".into(), "oMiniBuyer0002".into());
    data.remove("operator_id");
    let e = send(&t, "1.1", data).await;
    assert_eq!(e.response.rsp_code, "SUCCESS", "{}", e.response.rsp_msg);
    let wrong = send(&t, "2.0", request(&t, "MINI-3")).await;
    assert_eq!(wrong.response.rsp_code, "PARAM_INVALID");
}

#[tokio::test]
async fn bad_mini_program_payments_are_refused_by_name_and_make_nothing() {
    let t = TestGateway::start().await;
    for (field, value, expected) in [
        ("openId", Value::Null, "missing required field: open_id"),
        ("appId", Value::Null, "missing required field: app_id"),
        ("amount", json!("8.80"), "amount"),
        ("biz_type", json!("ALIPAY"), "biz_type must be WECHATPAY"),
        ("call_back_url", json!("not a url"), "call_back_url"),
        (
            "operator_id",
            json!("9999999999"),
            "operator_id is not an operator",
        ),
    ] {
        let mut data = request(&t, "MINI-BAD");
        if value.is_null() {
            data.remove(field);
        } else {
            data.insert(field.into(), value.clone());
        }
        let e = send(&t, "1.0", data).await;
        assert_ne!(e.response.rsp_code, "SUCCESS", "{field}");
        assert!(
            e.response.rsp_msg.contains(expected),
            "{field}: {}",
            e.response.rsp_msg
        );
    }
    let stats = t.gateway.state().service.stats().await.unwrap();
    assert_eq!(
        stats.orders_by_status.iter().map(|(_, n)| n).sum::<u64>(),
        0
    );
}
