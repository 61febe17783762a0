import requests
import json
url = "https://api-prod-new.tagmango.com/api/v1/integration/webhook/webhook"
headers = {
"accept": "application/json",
"Content-Type": "application/json",
"x-api-key": "<Your API Key>"
}
data = {
"hookUrl": "<your webhook url>",
"event": "webinar.reminder.all",
"webinar": "<webinar to be associated> (optional sends all webinar related events if not specified)"
}
response = requests.post(url, headers=headers, json=data)
print(response.json())
