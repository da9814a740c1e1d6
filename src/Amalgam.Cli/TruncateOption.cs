using System.CommandLine;
using Amalgam.Models;

namespace Amalgam.Cli;

/// <summary>
/// --truncate none|left|right, shared by the verbs that run prompts: a prompt longer than the model's context is
/// refused unless the user asks for it to be cut.
/// </summary>
public static class TruncateOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--truncate")
        {
            Description = "A prompt longer than the model's context (max_position_embeddings, with the tokens to generate): none refuses it, left drops its oldest tokens (BOS kept), right its newest.",
            DefaultValueFactory = _ => "none",
        };
        option.Validators.Add(r =>
        {
            try { ContextFit.Parse(r.GetValueOrDefault<string>(), option.Name); }
            catch (ArgumentException e) { r.AddError(e.Message); }
        });
        return option;
    }

    public static Truncation Get(ParseResult parse, Option<string> option) => ContextFit.Parse(parse.GetValue(option), option.Name);
}
