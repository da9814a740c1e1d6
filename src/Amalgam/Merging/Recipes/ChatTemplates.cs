namespace Amalgam.Merging.Recipes;

/// <summary>
/// mergekit's <c>chat_template</c>: <c>auto</c> keeps the tokenizer source's template; a built-in name or a Jinja
/// template (any text with <c>{%</c> or <c>{{</c>) is written to the output as <c>chat_template.jinja</c> (and into
/// <c>tokenizer_config.json</c> when there is one).
/// </summary>
public static class ChatTemplates
{
    public static readonly IReadOnlyDictionary<string, string> Known = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["chatml"] = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
                     "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        ["alpaca"] = "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
                     "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}" +
                     "{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}" +
                     "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
    };

    public static bool IsTemplate(string text) => text.Contains("{%", StringComparison.Ordinal) || text.Contains("{{", StringComparison.Ordinal);

    /// <summary>The template text a plan asks for, or null to keep the copied one.</summary>
    public static string? Resolve(string? chatTemplate) =>
        chatTemplate is null or "auto" ? null : Known.TryGetValue(chatTemplate, out var t) ? t : chatTemplate;
}
