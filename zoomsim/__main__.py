import asyncio
import logging
import sys

from zoomsim.config import parse_config
from zoomsim.server import serve


def main():
    config = parse_config()
    logging.basicConfig(
        level=config.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("picows").setLevel(logging.WARNING)  # it logs every accepted connection at INFO
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
