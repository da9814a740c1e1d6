namespace Amalgam.Tokenizers.ChatTemplates;

/// <summary>
/// A chat template that cannot be parsed or rendered: a syntax error, a construct outside the supported subset
/// (named), the template's own <c>raise_exception</c> (its message verbatim), or a type error while rendering.
/// </summary>
public sealed class TemplateException(string message) : Exception(message);
