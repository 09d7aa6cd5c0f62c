# Linkwatch: one image for the probe/collector service and the portal service.
#
# Built from the package metadata, not a list of folders: the build stage makes the wheel
# pyproject.toml describes (every package with its SQL, templates and static files), the
# runtime stage installs it. The configuration is not in the image: mount it read-only at
# /etc/linkwatch/linkwatch.yaml (docker-compose.yml does).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl \
    && rm -r /wheels \
    && useradd --system --home-dir /var/lib/linkwatch --create-home linkwatch \
    && mkdir /etc/linkwatch
# The portal prints the monthly reports' PDFs with headless Chromium (and its fonts).
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged ICMP uses datagram sockets (docker-compose.yml widens ping_group_range);
# raw sockets need the NET_RAW capability, which the compose file grants to probes only.
USER linkwatch
WORKDIR /var/lib/linkwatch
EXPOSE 8080
ENTRYPOINT ["linkwatch"]
CMD ["run", "--config", "/etc/linkwatch/linkwatch.yaml"]
