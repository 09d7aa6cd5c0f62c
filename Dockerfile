# Linkwatch: one image for the probe/collector service and the portal service.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /opt/linkwatch
COPY pyproject.toml README.md ./
COPY linkwatch ./linkwatch
COPY probes ./probes
COPY collector ./collector
COPY sla ./sla
COPY portal ./portal
COPY config ./config
RUN pip install . \
    && useradd --system --home-dir /var/lib/linkwatch --create-home linkwatch

# Unprivileged ICMP uses datagram sockets (docker-compose.yml widens ping_group_range);
# raw sockets need the NET_RAW capability, which the compose file grants to probes only.
USER linkwatch
EXPOSE 8080
ENTRYPOINT ["linkwatch"]
CMD ["run", "--config", "/opt/linkwatch/config/docker.yaml"]
