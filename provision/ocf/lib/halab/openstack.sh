#!/bin/sh
# Shared by the lab's OpenStack OCF agents (resource.d/halab/*): the process under a pid file, started as the
# service's user, and a monitor that asks the service's API for real (os_probe.py beside this file). Why not the
# guide's ocf:openstack:* agents: they are not packaged, and their archived upstream copies start `keystone-all`
# and monitor with the v2 `keystone user-list`, neither of which exists in Zed (README, "Translations").

: "${OCF_FUNCTIONS_DIR:=${OCF_ROOT:-/usr/lib/ocf}/lib/heartbeat}"
. "${OCF_FUNCTIONS_DIR}/ocf-shellfuncs"

HALAB_OCF_LIB=$(dirname "$0")/../../lib/halab

# The parameters every agent has (os_process_params_xml), and those of an agent whose monitor asks an API
# (os_params_xml: both); each agent's meta-data lists them after its own.
: "${OCF_RESKEY_user:=nobody}"
: "${OCF_RESKEY_group:=nogroup}"
: "${OCF_RESKEY_pid:=${HA_RSCTMP}/halab-${OCF_RESOURCE_INSTANCE}.pid}"
: "${OCF_RESKEY_log:=/var/log/halab/${OCF_RESOURCE_INSTANCE}.log}"
: "${OCF_RESKEY_os_username:=admin}"
: "${OCF_RESKEY_os_project_name:=admin}"
: "${OCF_RESKEY_os_domain_name:=Default}"
: "${OCF_RESKEY_probe_timeout:=5}"

os_process_params_xml() {
    cat <<END
<parameter name="user" unique="0"><longdesc lang="en">The user the service runs as.</longdesc>
<shortdesc lang="en">User</shortdesc><content type="string" default="nobody"/></parameter>
<parameter name="group" unique="0"><longdesc lang="en">The group the service runs as.</longdesc>
<shortdesc lang="en">Group</shortdesc><content type="string" default="nogroup"/></parameter>
<parameter name="pid" unique="1"><longdesc lang="en">The pid file the agent keeps.</longdesc>
<shortdesc lang="en">Pid file</shortdesc><content type="string" default="\${HA_RSCTMP}/halab-\${OCF_RESOURCE_INSTANCE}.pid"/></parameter>
<parameter name="log" unique="0"><longdesc lang="en">Where the service's output goes.</longdesc>
<shortdesc lang="en">Log file</shortdesc><content type="string" default="/var/log/halab/\${OCF_RESOURCE_INSTANCE}.log"/></parameter>
END
}

os_params_xml() {
    os_process_params_xml
    cat <<END
<parameter name="os_auth_url" unique="0" required="1"><longdesc lang="en">Keystone's v3 URL the monitor gets its
token from (ending in /v3/).</longdesc><shortdesc lang="en">Keystone URL</shortdesc><content type="string"/></parameter>
<parameter name="os_username" unique="0"><longdesc lang="en">The user the monitor authenticates as.</longdesc>
<shortdesc lang="en">User name</shortdesc><content type="string" default="admin"/></parameter>
<parameter name="os_password_file" unique="0" required="1"><longdesc lang="en">A file (0600) holding that user's
password: not a parameter, so that it is never in the CIB.</longdesc><shortdesc lang="en">Password file</shortdesc>
<content type="string"/></parameter>
<parameter name="os_project_name" unique="0"><longdesc lang="en">The project the token is scoped to.</longdesc>
<shortdesc lang="en">Project</shortdesc><content type="string" default="admin"/></parameter>
<parameter name="os_domain_name" unique="0"><longdesc lang="en">The user's and the project's domain.</longdesc>
<shortdesc lang="en">Domain</shortdesc><content type="string" default="Default"/></parameter>
<parameter name="probe_timeout" unique="0"><longdesc lang="en">Seconds the monitor waits for each API
answer.</longdesc><shortdesc lang="en">API timeout</shortdesc><content type="integer" default="5"/></parameter>
END
}

os_actions_xml() {
    cat <<END
<actions>
<action name="start" timeout="$1s"/>
<action name="stop" timeout="30s"/>
<action name="monitor" timeout="30s" interval="10s" depth="0"/>
<action name="validate-all" timeout="10s"/>
<action name="meta-data" timeout="5s"/>
</actions>
END
}

# The service is its process group (setsid makes the pid the group's id), running while any member that runs the
# agent's program (OS_MARKER, set by the agent) is alive: uwsgi's workers outlive a master killed with SIGKILL and
# would go on serving; a pid reused by something else since is not the service.
os_pid_running() {
    [ -s "$OCF_RESKEY_pid" ] && pgrep -g "$(cat "$OCF_RESKEY_pid")" -f "$OS_MARKER" >/dev/null 2>&1
}

# os_api_failed MESSAGE: the monitor's failure (1), said unless this is a probe or start's own polling
os_api_failed() {
    [ -n "$OS_QUIET" ] || ocf_is_probe || ocf_exit_reason "$1"
    return $OCF_ERR_GENERIC
}

# os_judge ANSWER WANT WHAT: the monitor's verdict on an API answer (os_probe.py). WANT is success; so, outside
# start, is a service that fails a request (a 5xx, no response at all, a timeout, no token from Keystone) while its
# own version document, which needs no database, answers 200: it runs, what it stands on does not (ch. 3's MySQL
# failing over under the APIs: Keystone's uwsgi then closes the token request without a response). Restarting it
# would cure nothing and Pacemaker would stop the group on a healthy node. A refusal of the service's own (401,
# 404), or a service whose version document does not answer either (hung, frozen), is a failure (1); Glance's
# monitor finding Keystone refusing it ("token 401") is not Glance's failure. Cinder's version list, its root,
# answers 300 (Multiple Choices).
os_judge() {
    [ "$1" = "$2" ] && return $OCF_SUCCESS
    if [ -z "$OS_QUIET" ]; then
        case "$1" in
            "5"[0-9][0-9]"; versions "[23]00|"error "*"; versions "[23]00|"token "*"; versions "[23]00)
                ocf_log warn "$3 answered $1: its backend fails, the service itself runs"; return $OCF_SUCCESS ;;
        esac
    fi
    os_api_failed "$3: $1"
}

# os_probe MODE ARGS...: one API question (os_probe.py), the password file on stdin; prints the answer
os_probe() {
    python3 "$HALAB_OCF_LIB/os_probe.py" "$@" <"$OCF_RESKEY_os_password_file" 2>&1
}

os_process_validate() {  # what starting the service as its user needs
    for b in python3 setpriv setsid; do check_binary "$b"; done
    id -u "$OCF_RESKEY_user" >/dev/null 2>&1 || { ocf_exit_reason "no user $OCF_RESKEY_user"; exit $OCF_ERR_CONFIGURED; }
    return $OCF_SUCCESS
}

os_validate() {  # the agent's own checks first; then these
    [ -f "$HALAB_OCF_LIB/os_probe.py" ] || { ocf_exit_reason "$HALAB_OCF_LIB/os_probe.py is missing"; exit $OCF_ERR_INSTALLED; }
    [ -n "$OCF_RESKEY_os_auth_url" ] || { ocf_exit_reason "os_auth_url is not set"; exit $OCF_ERR_CONFIGURED; }
    [ -r "$OCF_RESKEY_os_password_file" ] || {
        ocf_exit_reason "os_password_file $OCF_RESKEY_os_password_file is not readable"; exit $OCF_ERR_CONFIGURED; }
    os_process_validate
}

# os_start COMMAND...: start it detached as the user (pid file) unless it runs already, then poll the monitor
# until it passes: Pacemaker's start timeout bounds the wait, and a service that exits ends it at once.
os_start() {
    OS_QUIET=1
    os_monitor && return $OCF_SUCCESS
    if ! os_pid_running; then
        mkdir -p "$(dirname "$OCF_RESKEY_pid")" "$(dirname "$OCF_RESKEY_log")"
        # setsid: a session of its own, out of the executor's process group (killed when an action times out); a
        # background job of a shell without job control is no group leader, so setsid needs no fork: $! stays the
        # service's pid and its group's id
        # cd /: Pacemaker's executor runs agents in its own 0750 directory, which the service's user cannot read
        # (Keystone's import of its policies died on `Permission denied: '.'`)
        (cd / && exec setsid setpriv --reuid="$OCF_RESKEY_user" --regid="$OCF_RESKEY_group" --clear-groups "$@") \
            >>"$OCF_RESKEY_log" 2>&1 </dev/null &
        echo $! >"$OCF_RESKEY_pid"
    fi
    while ! os_monitor; do
        os_started_alive || { ocf_exit_reason "exited while starting: see $OCF_RESKEY_log"; return $OCF_ERR_GENERIC; }
        sleep 1
    done
    return $OCF_SUCCESS
}

# The process start launched, alive (not a zombie its parent has yet to reap). Not os_pid_running: until the
# background job has exec'd setsid, no process has its pid as group id, and a slow CPU (TCG, a busy host) let
# start's first look fall in that gap and call a service that was only starting "exited" (measured: a start
# failed after 102 ms with an empty log).
os_started_alive() {
    os_alive_pid=$(cat "$OCF_RESKEY_pid" 2>/dev/null) && [ -n "$os_alive_pid" ] &&
        [ -r "/proc/$os_alive_pid/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$os_alive_pid/status" 2>/dev/null
}

# An API under uwsgi (Cinder's, Neutron's): the parameters binary, wsgi, config, listen, url, processes and
# threads, their meta-data, their checks and the start. --pyargv: the WSGI apps read their configuration files
# from sys.argv; Connection: close: uwsgi's http-socket closes after each answer without saying so
# (provision/keystone.py). Each such agent calls os_uwsgi_defaults first: set here for every agent, they would
# shadow the defaults of other agents' parameters of the same names (Keystone's threads, Glance's binary).
os_uwsgi_defaults() {
    : "${OCF_RESKEY_binary:=/usr/bin/uwsgi}"
    : "${OCF_RESKEY_processes:=1}"
    : "${OCF_RESKEY_threads:=2}"
}

os_uwsgi_params_xml() {  # PORT: the service's port, for the descriptions
    cat <<END
<parameter name="listen" unique="0" required="1"><longdesc lang="en">The address:port uwsgi binds (the API VIP and
port $1, as the guide binds the service).</longdesc>
<shortdesc lang="en">Listen address</shortdesc><content type="string"/></parameter>
<parameter name="url" unique="0" required="1"><longdesc lang="en">Where this service answers (http://ADDRESS:$1/):
the monitor asks below it.</longdesc><shortdesc lang="en">Service URL</shortdesc><content type="string"/></parameter>
<parameter name="binary" unique="0"><longdesc lang="en">uwsgi, or a link to it under a name of the service's own
(the process name then tells it from another service's uwsgi).</longdesc>
<shortdesc lang="en">uwsgi program</shortdesc><content type="string" default="/usr/bin/uwsgi"/></parameter>
<parameter name="processes" unique="0"><longdesc lang="en">uwsgi worker processes.</longdesc>
<shortdesc lang="en">Processes</shortdesc><content type="integer" default="1"/></parameter>
<parameter name="threads" unique="0"><longdesc lang="en">Threads per worker.</longdesc>
<shortdesc lang="en">Threads</shortdesc><content type="integer" default="2"/></parameter>
END
}

os_uwsgi_validate() {
    [ -x "$OCF_RESKEY_binary" ] || { ocf_exit_reason "no program $OCF_RESKEY_binary"; exit $OCF_ERR_INSTALLED; }
    [ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] || {
        ocf_exit_reason "uwsgi's python3 plugin is missing (uwsgi-plugin-python3)"; exit $OCF_ERR_INSTALLED; }
    [ -f "$OCF_RESKEY_wsgi" ] || { ocf_exit_reason "no WSGI file $OCF_RESKEY_wsgi"; exit $OCF_ERR_INSTALLED; }
    [ -r "$OCF_RESKEY_config" ] || { ocf_exit_reason "$OCF_RESKEY_config is not readable"; exit $OCF_ERR_CONFIGURED; }
    [ -n "$OCF_RESKEY_listen" ] || { ocf_exit_reason "listen is not set"; exit $OCF_ERR_CONFIGURED; }
    [ -n "$OCF_RESKEY_url" ] || { ocf_exit_reason "url is not set"; exit $OCF_ERR_CONFIGURED; }
    os_validate
}

os_uwsgi_start() {
    os_start "$OCF_RESKEY_binary" --plugin python3 --http-socket "$OCF_RESKEY_listen" \
        --wsgi-file "$OCF_RESKEY_wsgi" --pyargv "--config-file $OCF_RESKEY_config" --master \
        --processes "$OCF_RESKEY_processes" --threads "$OCF_RESKEY_threads" \
        --die-on-term --no-orphans --lazy-apps --need-app --add-header "Connection: close"
}

# SIGTERM to the service's process group, then SIGKILL to it when the stop timeout is nearly spent
os_stop() {
    os_pid_running || { rm -f "$OCF_RESKEY_pid"; return $OCF_SUCCESS; }
    pid=$(cat "$OCF_RESKEY_pid")
    kill -TERM "-$pid" 2>/dev/null
    left=$(( ${OCF_RESKEY_CRM_meta_timeout:-30000} / 1000 - 5 ))
    while os_pid_running && [ "$left" -gt 0 ]; do sleep 1; left=$((left - 1)); done
    if os_pid_running; then
        ocf_log warn "$OCF_RESOURCE_INSTANCE did not exit on SIGTERM: SIGKILL"
        kill -KILL "-$pid" 2>/dev/null
        while os_pid_running; do sleep 1; done
    fi
    rm -f "$OCF_RESKEY_pid"
    return $OCF_SUCCESS
}

# os_main META_DATA_FUNCTION: the OCF action dispatcher every agent ends with
os_main() {
    case "$__OCF_ACTION" in
        meta-data) "$1"; exit $OCF_SUCCESS ;;
        usage|help) echo "usage: $0 {start|stop|monitor|validate-all|meta-data}"; exit $OCF_SUCCESS ;;
    esac
    case "$__OCF_ACTION" in  # stop and monitor need no valid configuration: only the pid file
        start) validate; start ;;
        stop) os_stop ;;
        monitor) os_monitor ;;
        validate-all) validate ;;
        *) echo "usage: $0 {start|stop|monitor|validate-all|meta-data}"; exit $OCF_ERR_UNIMPLEMENTED ;;
    esac
}
