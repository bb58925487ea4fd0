import getpass
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from zoomapp.marketplace import registration
from zoomapp.marketplace.encryption import WrongEncryptionKey

SECRETS = (("client_secret", "ZOOM_APP_CLIENT_SECRET", "Client Secret"),
           ("webhook_secret_token", "ZOOM_APP_WEBHOOK_SECRET_TOKEN", "Secret Token"))


class Command(BaseCommand):
    help = ("Register (or update) a Zoom app served by this deployment; --simulator also registers it with the Zoom "
            "simulator. Its secrets are read from ZOOM_APP_CLIENT_SECRET and ZOOM_APP_WEBHOOK_SECRET_TOKEN, or asked "
            "for without echo at a terminal, never from the command line (which other users' `ps` shows); left "
            "empty, a stored one is kept. A new app needs both, unless --generate-secrets invents them (only for an "
            "app that no real Zoom calls).")

    def add_arguments(self, parser):
        parser.add_argument("--name")
        parser.add_argument("--client-id")
        parser.add_argument("--home-url", default="")
        parser.add_argument("--account-id", default="", help="the Zoom account that owns the app")
        parser.add_argument("--simulator", action="store_true", help="also register it with the Zoom simulator")
        parser.add_argument("--generate-secrets", action="store_true",
                            help="invent the secrets a new app lacks: for the simulator only, since real Zoom signs "
                                 "and authenticates with its own")
        parser.add_argument("--demo", action="store_true",
                            help="the demo app 'Notetaker', registered with the simulator (its secrets invented)")

    def handle(self, *args, **options):
        fields = dict(registration.DEMO_APP) if options["demo"] else {}
        for option in ("name", "client_id", "home_url", "account_id"):
            if options[option]:
                fields[option] = options[option]
        if not options["demo"]:
            for field, variable, prompt in SECRETS:
                value = os.environ.get(variable) or (getpass.getpass(f"{prompt} (hidden; empty keeps the stored "
                                                                     "one): ") if sys.stdin.isatty() else "")
                if value:
                    fields[field] = value
        if not fields.get("name") or not fields.get("client_id"):
            raise CommandError("give --name and --client-id (or --demo)")
        try:
            app = registration.save_app(**fields, generate_secrets=options["generate_secrets"] or options["demo"])
        except registration.MissingSecrets as exc:
            variables = " and ".join(variable for field, variable, _ in SECRETS if field in exc.args[0])
            raise CommandError(
                f"{fields['client_id']} is a new app and needs Zoom's secrets: set {variables} (the app's Client "
                "Secret and its Secret Token, from its Marketplace page), or run this at a terminal to be asked for "
                "them. Nothing was saved. (--generate-secrets invents them, for an app only the simulator calls.)"
            ) from None
        except WrongEncryptionKey as exc:
            raise CommandError(f"{exc}. Nothing was saved.") from None
        self.stdout.write(f"Saved {app}. Webhook URL: {registration.app_urls(app)['event_url']}")
        if options["simulator"] or options["demo"]:
            try:
                registration.register_with_simulator(app)
            except registration.SimulatorRegistrationError as exc:
                raise CommandError(f"{exc}. Start it with: python -m zoomsim") from exc
            self.stdout.write("Registered with the Zoom simulator (it validated the webhook endpoint).")
