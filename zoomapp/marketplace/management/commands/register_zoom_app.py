from django.core.management.base import BaseCommand, CommandError

from zoomapp.marketplace import registration


class Command(BaseCommand):
    help = ("Register (or update) a Zoom app served by this deployment; "
            "--simulator also registers it with the Zoom simulator.")

    def add_arguments(self, parser):
        parser.add_argument("--name")
        parser.add_argument("--client-id")
        parser.add_argument("--client-secret", help="OAuth client secret (generated when omitted for a new app)")
        parser.add_argument("--webhook-secret-token",
                            help="webhook Secret Token (generated when omitted for a new app)")
        parser.add_argument("--home-url", default="")
        parser.add_argument("--account-id", default="", help="the Zoom account that owns the app")
        parser.add_argument("--simulator", action="store_true", help="also register it with the Zoom simulator")
        parser.add_argument("--demo", action="store_true",
                            help="the demo app 'Notetaker', registered with the simulator")

    def handle(self, *args, **options):
        fields = dict(registration.DEMO_APP) if options["demo"] else {}
        for option in ("name", "client_id", "client_secret", "webhook_secret_token", "home_url", "account_id"):
            if options[option]:
                fields[option] = options[option]
        if not fields.get("name") or not fields.get("client_id"):
            raise CommandError("give --name and --client-id (or --demo)")
        app = registration.save_app(**fields)
        self.stdout.write(f"Saved {app}. Webhook URL: {registration.app_urls(app)['event_url']}")
        if options["simulator"] or options["demo"]:
            try:
                registration.register_with_simulator(app)
            except registration.SimulatorRegistrationError as exc:
                raise CommandError(f"{exc}. Start it with: python -m zoomsim") from exc
            self.stdout.write("Registered with the Zoom simulator (it validated the webhook endpoint).")
