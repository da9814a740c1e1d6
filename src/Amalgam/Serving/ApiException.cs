using System.Text.Json.Nodes;

namespace Amalgam.Serving;

/// <summary>
/// A request the server refuses: an HTTP status and an OpenAI-style error body
/// <c>{"error": {"message", "type", "param", "code"}}</c> naming the offending field.
/// </summary>
public sealed class ApiException(int status, string? param, string message, string? code = null, string? type = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type ?? status switch
    {
        401 => "authentication_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    public static ApiException BadRequest(string? param, string message) => new(400, param, param is null ? message : $"{param}: {message}");

    public JsonObject Body() => new()
    {
        ["error"] = new JsonObject
        {
            ["message"] = Message,
            ["type"] = Type,
            ["param"] = Param,
            ["code"] = Code,
        },
    };
}
