fetch('https://api-prod-new.tagmango.com/api/v1/integration/webhook/webhook', {
method: 'POST',
headers: {
'accept': 'application/json',
'Content-Type': 'application/json',
'x-api-key': '<Your API Key>'
},
body: JSON.stringify({
"hookUrl": "<your webhook url>",
"event": "webinar.reminder.all",
"webinar": "<webinar to be associated> (optional sends all webinar related events if not specified)"
})
})
.then(response => response.json())
.then(data => console.log(data));
