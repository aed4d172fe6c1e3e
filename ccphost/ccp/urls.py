from django.urls import path

from ccphost.ccp import views

app_name = "ccp"

urlpatterns = [
    path("<slug:alias>/ccp-v2/", views.ccp_page, name="ccp"),
    path("<slug:alias>/agent/", views.agent_page, name="agent"),
    path("<slug:alias>/login/", views.InstanceLoginView.as_view(), name="login"),
    path("<slug:alias>/login/done/", views.signed_in, name="signed_in"),
    path("<slug:alias>/events-token/", views.events_token, name="events_token"),
    path("<slug:alias>/supervisor/", views.supervisor_page, name="supervisor"),
]
