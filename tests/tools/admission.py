"""Sends AdmissionReviews to the injector over HTTPS, as the API server would, and applies the
JSON Patches it returns with a real JSON Patch implementation (PyPI jsonpatch).

    admission.py HOST PORT CA_FILE < reviews.json > answers.json

reviews.json is a list of request bodies: AdmissionReview objects, or strings sent as they are
(for the refusal cases). For each, answers.json holds {"status", "body"} and, for a review
answer, "review" (the response AdmissionReview) and "patched" (request.object with the decoded
patch applied, or unchanged when there is none). One keep-alive connection carries them all;
the certificate is verified against CA_FILE, host name included.
"""

import base64
import http.client
import json
import ssl
import sys

import jsonpatch


def main():
    host, port, ca_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    context = ssl.create_default_context(cafile=ca_file)
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=30)
    answers = []
    for review in json.load(sys.stdin):
        body = review if isinstance(review, str) else json.dumps(review)
        connection.request(
            "POST", "/inject", body=body.encode(), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        text = response.read().decode()
        answer = {"status": response.status, "body": text}
        if response.status == 200:
            answered = json.loads(text)
            answer["review"] = answered
            patched = review["request"]["object"]
            encoded = answered["response"].get("patch")
            if encoded is not None:
                assert answered["response"]["patchType"] == "JSONPatch", answered
                patch = jsonpatch.JsonPatch(json.loads(base64.b64decode(encoded)))
                patched = patch.apply(patched)
            answer["patched"] = patched
        answers.append(answer)
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
