"""
The policy node's ``std_srvs/Trigger`` services ``~/walk``, ``~/stand``, ``~/recover``, ``~/damp``.

Each makes one controller request (:class:`humanoid_rl_ros.core.controller.Controller`) under
the node's lock and answers with the controller's ``(accepted, message)``; a node that is not
active refuses, saying so (with its last error, if any).
"""

import threading
from typing import Callable

from std_srvs.srv import Trigger

SERVICES = {'walk': 'request_walk', 'stand': 'request_stand', 'recover': 'recover',
            'damp': 'request_damping'}
"""``std_srvs/Trigger`` services (``~/<name>``) -> the controller request they make."""


def create_services(node, lock: threading.RLock, now_s: Callable[[], float]) -> None:
    """
    Create the services on ``node`` (a policy node).

    ``lock`` guards the controller; ``now_s()`` returns the node's ROS time [s]. The node's
    ``controller``, ``lifecycle_state`` and ``last_error`` are read at each call, and its
    diagnostics published after each request.
    """
    def service_for(method: str):
        def call(request, response):
            with lock:
                return _answer(node, response, method, now_s)
        return call

    for name, method in SERVICES.items():
        node.create_service(Trigger, f'~/{name}', service_for(method))


def _answer(node, response, method: str, now_s: Callable[[], float]):
    if node.controller is None or node.lifecycle_state != 'active':
        response.success = False
        detail = f': {node.last_error}' if node.last_error else ''
        response.message = (f'node is {node.lifecycle_state}; configure and activate it '
                            f'first{detail}')
        return response
    response.success, response.message = getattr(node.controller, method)(now_s())
    node.get_logger().info(f'{method}: {response.message}')
    node.publish_diagnostics()
    return response
