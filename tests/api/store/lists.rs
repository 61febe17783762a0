//! Paging, on both backends: each list read a page at a time, with small
//! limits, gives every item once in the order of the whole list, and ties
//! of a sort key (two webinars starting together, two reminders due
//! together) are told apart by the cursor.

use super::records::subscription;
use super::*;

/// Reads a whole list a page of `limit` at a time; `list` is one call of
/// the store's.
async fn walk<T, F, Fut>(limit: u32, list: F) -> Vec<T>
where
    F: Fn(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Paged<T>>>,
{
    let mut page = PageRequest::first(limit);
    let mut out = Vec::new();
    loop {
        let p = list(page.clone()).await.unwrap();
        assert!(p.items.len() <= limit as usize);
        out.extend(p.items);
        match p.next {
            None => return out,
            next => page.after = next,
        }
    }
}

/// Walks a list by 1, 2 and 3 and compares each walk's ids with the whole.
async fn same_walks<T, F, Fut>(what: &str, n: usize, id: fn(&T) -> String, list: F)
where
    F: Fn(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Paged<T>>>,
{
    let whole: Vec<String> = walk(1000, &list).await.iter().map(id).collect();
    assert_eq!(whole.len(), n, "{what}");
    for limit in [1, 2, 3] {
        let walked: Vec<String> = walk(limit, &list).await.iter().map(id).collect();
        assert_eq!(walked, whole, "{what} by {limit}");
    }
}

fn webinar(from: DateTime<Utc>) -> WebinarFields {
    WebinarFields {
        title: "Launch".into(),
        link: "https://x.example/w".into(),
        from_time: from,
        to_time: from + Duration::hours(1),
        timezone: None,
        mango_ids: Vec::new(),
    }
}

pub async fn every_list_pages_in_its_order(s: DynStore) {
    let s = &s;
    let c = s.create_creator("C", None).await.unwrap();
    for i in 0..3 {
        s.create_creator(&format!("O{i}"), None).await.unwrap();
        s.create_api_key(key(&c.id, "k", "tmk_", &format!("h{i}")))
            .await
            .unwrap();
        s.create_mango(&c.id, &format!("M{i}")).await.unwrap();
        s.subscribe(&subscription(&c.id, &format!("https://x.example/{i}")))
            .await
            .unwrap();
    }
    let t = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
        .unwrap()
        .to_utc();
    // Two reminders due together: the cursor holds the label and the id.
    let plan = |due: DateTime<Utc>| {
        ["1day", "30min", "15min", "5min"].map(|label| PlannedReminder {
            label: label.into(),
            due_at: if label == "30min" {
                due - Duration::minutes(15)
            } else {
                due
            },
        })
    };
    let mut wids = Vec::new();
    for h in [3, 1, 2, 2, 5] {
        let from = t + Duration::hours(h);
        let w = s.create_webinar(&c.id, &webinar(from), &plan(from)).await;
        wids.push(w.unwrap().id);
    }
    let w = &wids[0];
    let cid = &c.id;
    same_walks(
        "creators",
        4,
        |x: &Creator| x.id.to_string(),
        |p| async move { s.list_creators(&p).await },
    )
    .await;
    same_walks(
        "keys",
        3,
        |x: &ApiKey| x.id.to_string(),
        |p| async move { s.list_api_keys(cid, &p).await },
    )
    .await;
    same_walks(
        "mangoes",
        3,
        |x: &Mango| x.id.to_string(),
        |p| async move { s.list_mangoes(cid, &p).await },
    )
    .await;
    same_walks(
        "subscriptions",
        3,
        |x: &Subscription| x.id.to_string(),
        |p| async move {
            s.list_subscriptions(Some(cid), Some(SubscriptionStatus::Active), &p)
                .await
        },
    )
    .await;
    same_walks(
        "webinars",
        5,
        |x: &Webinar| x.id.to_string(),
        |p| async move { s.list_webinars(cid, &p).await },
    )
    .await;
    same_walks(
        "reminders",
        4,
        |x: &Reminder| x.id.to_string(),
        |p| async move { s.list_reminders(w, &p).await },
    )
    .await;
    let starts: Vec<DateTime<Utc>> = s
        .list_webinars(&c.id, &PageRequest::all())
        .await
        .unwrap()
        .items
        .iter()
        .map(|w| w.from_time)
        .collect();
    assert!(starts.is_sorted(), "by start time: {starts:?}");
    let bad = PageRequest {
        after: Some("nope".into()),
        limit: 2,
    };
    assert!(matches!(
        s.list_webinars(&c.id, &bad).await,
        Err(StoreError::InvalidCursor)
    ));
    assert!(matches!(
        s.list_creators(&bad).await,
        Err(StoreError::InvalidCursor)
    ));
}
