using System.Text.Json;
using Amalgam.Serving;
using Amalgam.Tests.Cli;
using OpenAI.Chat;

namespace Amalgam.Tests.Serving;

/// <summary>
/// Chat rendered with the model folder's chat template, or with --chat-template FILE: the SDK's chat answer and its
/// prompt tokens equal `amalgam generate --chat` (the rendered text encoded as it is, no second BOS).
/// </summary>
public sealed class ServingChatTemplateTests
{
    const string Template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}Answer: {% endif %}";

    [Fact]
    public async Task ChatUsesTheModelsTemplateOrTheGivenFileAndEqualsGenerateChat()
    {
        using var dir = new TestData.TempDir();
        string model = dir["base"];
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(ServingFixture.BaseDir)) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), Template);
        string templateFile = dir["template.jinja"];
        File.WriteAllText(templateFile, Template);
        string question = "Spell the word \"garden\" backwards.";
        string chatFile = dir["chat.json"];
        File.WriteAllText(chatFile, JsonSerializer.Serialize(new[] { new { role = "user", content = question } }));

        var cli = CliRunner.Run(["generate", "--model", model, "--adapter", ServingFixture.ExpertDir("reverse_word"), "--chat", chatFile, "--max-new-tokens", "12", "--json"]);
        Assert.True(cli.ExitCode == 0, cli.Stderr);
        var expected = JsonDocument.Parse(cli.Stdout).RootElement;
        int promptTokens = expected.GetProperty("prompt_ids").GetArrayLength();

        foreach (var options in new[]
        {
            new ServeOptions(model) { Adapters = [("reverse_word", ServingFixture.ExpertDir("reverse_word"))], Port = 0 },
            new ServeOptions(ServingFixture.BaseDir) { Adapters = [("reverse_word", ServingFixture.ExpertDir("reverse_word"))], Port = 0, ChatTemplateFile = templateFile },
        })
        {
            await using var server = await AmalgamServer.StartAsync(options);
            var chat = ServingFixture.ClientFor(server).GetChatClient("reverse_word");
            ChatCompletion answer = chat.CompleteChat([new UserChatMessage(question)], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 });
            Assert.Equal(expected.GetProperty("text").GetString(), answer.Content[0].Text);
            Assert.Equal(promptTokens, answer.Usage.InputTokenCount);
        }
    }

    [Fact]
    public async Task AMissingChatTemplateFileIsRefusedNamingTheOption()
    {
        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir) { Port = 0, ChatTemplateFile = "/nonexistent/t.jinja" }));
        Assert.Equal("/nonexistent/t.jinja: file does not exist", e.Message);
    }
}
